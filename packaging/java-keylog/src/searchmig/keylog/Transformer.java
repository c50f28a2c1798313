package searchmig.keylog;

import java.lang.instrument.ClassFileTransformer;
import java.security.ProtectionDomain;
import jdk.internal.org.objectweb.asm.ClassReader;
import jdk.internal.org.objectweb.asm.ClassVisitor;
import jdk.internal.org.objectweb.asm.ClassWriter;
import jdk.internal.org.objectweb.asm.MethodVisitor;
import jdk.internal.org.objectweb.asm.Opcodes;

/**
 * Adds, at the start of SSLTrafficKeyDerivation.createKeyDerivation(HandshakeContext, SecretKey),
 * a call Hook.secret(this, context, secret). JSSE calls it with every TLS 1.3 traffic secret
 * (handshake, application, updates) and with the TLS 1.2 master secret (full and resumed
 * handshakes), so one hook covers both versions.
 */
final class Transformer implements ClassFileTransformer {
    static final String METHOD = "createKeyDerivation";
    static final String DESC = "(Lsun/security/ssl/HandshakeContext;Ljavax/crypto/SecretKey;)"
            + "Lsun/security/ssl/SSLKeyDerivation;";

    @Override
    public byte[] transform(Module module, ClassLoader loader, String name, Class<?> redefined,
                            ProtectionDomain pd, byte[] bytes) {
        if (!Agent.TARGET.equals(name))
            return null;
        try {
            ClassReader cr = new ClassReader(bytes);
            ClassWriter cw = new ClassWriter(cr, ClassWriter.COMPUTE_MAXS);
            boolean[] done = new boolean[1];
            cr.accept(new ClassVisitor(Opcodes.ASM8, cw) {
                @Override
                public MethodVisitor visitMethod(int acc, String n, String d, String sig, String[] ex) {
                    MethodVisitor mv = super.visitMethod(acc, n, d, sig, ex);
                    if (!METHOD.equals(n) || !DESC.equals(d) || (acc & Opcodes.ACC_STATIC) != 0)
                        return mv;
                    return new MethodVisitor(Opcodes.ASM8, mv) {
                        @Override
                        public void visitCode() {
                            super.visitCode();
                            super.visitVarInsn(Opcodes.ALOAD, 0);
                            super.visitVarInsn(Opcodes.ALOAD, 1);
                            super.visitVarInsn(Opcodes.ALOAD, 2);
                            super.visitMethodInsn(Opcodes.INVOKESTATIC, "searchmig/keylog/boot/Hook", "secret",
                                    "(Ljava/lang/Object;Ljava/lang/Object;Ljava/lang/Object;)V", false);
                            done[0] = true;
                        }
                    };
                }
            }, 0);
            if (!done[0]) {
                KeyLogger.warnOnce("hook point " + METHOD + " not found in " + name + " (unsupported JDK?)");
                return null;
            }
            return cw.toByteArray();
        } catch (Throwable t) {
            KeyLogger.warnOnce("cannot instrument " + name + ": " + t);
            return null;
        }
    }
}
