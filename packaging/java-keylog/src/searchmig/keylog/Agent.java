package searchmig.keylog;

import java.io.File;
import java.lang.instrument.ClassFileTransformer;
import java.lang.instrument.Instrumentation;
import java.lang.reflect.Field;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import java.util.jar.JarFile;

/**
 * Java agent writing JSSE session secrets as an NSS key log (docs/tls.md, "Java nodes").
 * -javaagent:searchmig-keylog.jar=/run/searchmig/keys.log at start, or attached at run time
 * (AttachMain). Argument "off" stops logging. Never throws into the host JVM.
 */
public final class Agent {
    static final String TARGET = "sun/security/ssl/SSLTrafficKeyDerivation";
    private static KeyLogger logger;
    private static boolean installed;

    private Agent() {}

    public static void premain(String args, Instrumentation inst) {
        start(args, inst);
    }

    public static void agentmain(String args, Instrumentation inst) {
        start(args, inst);
    }

    private static synchronized void start(String args, Instrumentation inst) {
        try {
            String path = args == null ? "" : args.trim();
            if (path.isEmpty()) {
                System.err.println("searchmig-keylog: no key log path given (agent argument); not logging");
                return;
            }
            if (logger == null)
                logger = new KeyLogger();
            logger.setPath("off".equals(path) ? null : path);
            if (installed)
                return;
            install(inst);
            installed = true;
        } catch (Throwable t) {
            System.err.println("searchmig-keylog: not active: " + t);
        }
    }

    @SuppressWarnings("unchecked")
    private static void install(Instrumentation inst) throws Exception {
        // The boot jar (Hook) sits beside this jar.
        File self = new File(Agent.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        File boot = new File(self.getParentFile(), "searchmig-keylog-boot.jar");
        inst.appendToBootstrapClassLoaderSearch(new JarFile(boot));
        Class<?> hook = Class.forName("searchmig.keylog.boot.Hook", true, null);
        Field sink = hook.getField("sink");
        sink.set(null, (Consumer<Object[]>) logger::accept);

        Module base = Object.class.getModule();
        Module me = Agent.class.getModule();
        inst.redefineModule(base, Set.of(hook.getModule()),
                Map.of("jdk.internal.org.objectweb.asm", Set.of(me)),
                Map.of("sun.security.ssl", Set.of(me)), Set.of(), Map.of());
        logger.init();

        // Loaded only now: it links against java.base's internal ASM.
        ClassFileTransformer tf = (ClassFileTransformer) Class.forName("searchmig.keylog.Transformer")
                .getDeclaredConstructor().newInstance();
        inst.addTransformer(tf, true);
        for (Class<?> c : inst.getAllLoadedClasses()) {
            if (c.getName().equals(TARGET.replace('/', '.'))) {
                inst.retransformClasses(c);
                break;
            }
        }
    }
}
