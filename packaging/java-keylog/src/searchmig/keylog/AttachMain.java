package searchmig.keylog;

import com.sun.tools.attach.VirtualMachine;
import java.io.File;

/**
 * Loads the key log agent into a running JVM:
 * java -cp searchmig-keylog.jar searchmig.keylog.AttachMain PID KEYLOG|off
 * Must run as the JVM's user (JDK Attach API).
 */
public final class AttachMain {
    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: AttachMain PID KEYLOG_FILE|off");
            System.exit(2);
        }
        String arg = args[1];
        if (!"off".equals(arg))
            arg = new File(arg).getAbsolutePath();
        String jar = new File(AttachMain.class.getProtectionDomain().getCodeSource().getLocation().toURI())
                .getAbsolutePath();
        VirtualMachine vm = VirtualMachine.attach(args[0]);
        try {
            vm.loadAgent(jar, arg);
        } finally {
            vm.detach();
        }
        System.out.println("searchmig-keylog: agent loaded into " + args[0] + ": " + arg);
    }
}
