/* dlx launcher: the image the enterer ends in, and the command process's first.
 *
 * The enterer (E, see mod.rs) joins the container, takes on the container's
 * identity and capabilities, and then execs this program in place of dlx. It
 * forks the command process (F), which is born in the container's PID namespace
 * and so is the one process of a session the container can see before the
 * command runs. F holds nothing of dlx: not dlx's code, not the memory of the
 * session's dlx (the operator's environment, what the engine said), no
 * descriptor but its stdio and the report pipe. Its /proc/<pid>/exe is this
 * program in a sealed, execute-only memfd, which nobody can write.
 *
 * Arguments, as launch::launcher_argv builds them:
 *   argv[1]         "t" when F is to take its stdin as controlling terminal, else "-"
 *   argv[2]         the LSM exec attribute below the host's /proc
 *                   ("thread-self/attr/exec"), or "" for none
 *   argv[3]         the label to write there
 *   argv[4]         N, the number of paths to try
 *   argv[5..5+N)    the paths, in order (execvp(3) rules, see exec_first)
 *   argv[5+N..]     the command's argv
 * The environment is the command's. Descriptors: 0-2 the command's stdio, 3 the
 * report pipe to dlx, 4 the host's /proc (only with a label).
 *
 * Reports are launch::Report's 12-byte records: kind, step, two padding bytes,
 * then two native-endian 32-bit numbers.
 *
 * No libc: built by build.rs with -static -nostdlib; system calls are made
 * directly, for x86_64 and aarch64. */

#include <asm/unistd.h>
#include <linux/fcntl.h>
#include <linux/prctl.h>

typedef unsigned long size_t;

#if defined(__x86_64__)
__asm__(".text\n"
        ".global _start\n"
        ".type _start,@function\n"
        "_start:\n"
        "  xor %ebp, %ebp\n"
        "  mov %rsp, %rdi\n"
        "  and $-16, %rsp\n"
        "  call launcher_main\n"
        "  hlt\n");

static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}
#elif defined(__aarch64__)
__asm__(".text\n"
        ".global _start\n"
        ".type _start,%function\n"
        "_start:\n"
        "  mov x29, #0\n"
        "  mov x30, #0\n"
        "  mov x0, sp\n"
        "  bl launcher_main\n"
        "  brk #0\n");

static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc 0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory");
    return x0;
}
#else
#error "the dlx launcher supports x86_64 and aarch64"
#endif

#define sys1(n, a) sys6(n, (long)(a), 0, 0, 0, 0, 0)
#define sys2(n, a, b) sys6(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define sys3(n, a, b, c) sys6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

/* The compiler may call these for plain assignments. */
void *memset(void *s, int c, size_t n)
{
    unsigned char *p = s;
    while (n--)
        *p++ = (unsigned char)c;
    return s;
}

void *memcpy(void *d, const void *s, size_t n)
{
    unsigned char *p = d;
    const unsigned char *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

/* launch::Step values (a unit test of mod.rs runs this program to check them). */
enum {
    STEP_EXEC_LABEL = 4,
    STEP_FORK = 19,
    STEP_SESSION = 20,
    STEP_EXEC = 21,
};
enum { REPORT_SPAWNED = 2, REPORT_FAILED = 3, REPORT_EXEC_FAILED = 4 };
enum { REPORT_FD = 3, PROC_FD = 4 };
enum { ENOENT = 2, ENOTDIR = 20 };
enum { SIGKILL = 9, SIGCHLD = 17, SIGSTOP = 19, NSIG = 64 };
enum { SIG_SETMASK = 2, TIOCSCTTY = 0x540E };

static void report(unsigned char kind, unsigned char step, int a, int b)
{
    unsigned char rec[12] = {kind, step, 0, 0};
    memcpy(rec + 4, &a, 4);
    memcpy(rec + 8, &b, 4);
    sys3(__NR_write, REPORT_FD, rec, sizeof rec);
}

static __attribute__((noreturn)) void leave(int code)
{
    for (;;)
        sys1(__NR_exit_group, code);
}

static __attribute__((noreturn)) void fail(unsigned char step, long ret)
{
    report(REPORT_FAILED, step, (int)-ret, 0);
    leave(125);
}

static size_t len(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

/* A decimal number of at most 6 digits, or -1. */
static long number(const char *s)
{
    long n = 0;
    int digits = 0;
    for (; *s; s++, digits++) {
        if (*s < '0' || *s > '9' || digits == 6)
            return -1;
        n = n * 10 + (*s - '0');
    }
    return digits ? n : -1;
}

/* The kernel's struct sigaction on x86_64 and aarch64: handler, flags, restorer,
 * mask. All zero is SIG_DFL. */
struct kernel_sigaction {
    unsigned long handler, flags, restorer, mask;
};

/* What a fresh process has: no signal blocked, none ignored (exec keeps SIG_IGN,
 * and dlx ignores SIGPIPE), umask 022. */
static void reset_signals_and_umask(void)
{
    unsigned long none = 0;
    struct kernel_sigaction dfl = {0, 0, 0, 0};
    sys4(__NR_rt_sigprocmask, SIG_SETMASK, &none, 0, sizeof none);
    for (int sig = 1; sig <= NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sys4(__NR_rt_sigaction, sig, &dfl, 0, sizeof(unsigned long));
    sys1(__NR_umask, 022);
}

/* Try each path like execvp(3): a missing one moves on; one that exists but cannot
 * run is remembered, so that the status is 126 rather than 127. */
static __attribute__((noreturn)) void exec_first(char **paths, long n, char **argv, char **envp)
{
    long found = 0, last = ENOENT;
    for (long i = 0; i < n; i++) {
        long err = -sys3(__NR_execve, paths[i], argv, envp);
        if (err == ENOENT || err == ENOTDIR)
            last = err;
        else if (!found)
            found = err;
    }
    report(REPORT_EXEC_FAILED, STEP_EXEC, (int)(found ? found : last), found != 0);
    leave(found ? 126 : 127);
}

__attribute__((noreturn, used)) void launcher_main(long *sp)
{
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    char **envp = argv + argc + 1;
    long n = argc > 5 ? number(argv[4]) : -1;
    /* Not started by dlx's enterer: do nothing at all. */
    if (n < 1 || 5 + n >= argc)
        leave(125);

    /* First, before anything can fork: F inherits a non-dumpable memory, so that
     * only a holder of CAP_SYS_PTRACE over the host reads or attaches to it. And
     * die with dlx, as E did (exec may have cleared it). */
    sys2(__NR_prctl, PR_SET_DUMPABLE, 0);
    sys2(__NR_prctl, PR_SET_PDEATHSIG, SIGKILL);

    /* The LSM label for the command's exec. A task writes its own attribute, with
     * the credentials it opened it with, so this process opens it, through the
     * host's /proc (the container's may be anything, CVE-2019-16884); F inherits
     * the pending label and its exec applies it. */
    if (argv[2][0]) {
        long fd = sys4(__NR_openat, PROC_FD, argv[2], O_WRONLY | O_CLOEXEC, 0);
        if (fd < 0)
            fail(STEP_EXEC_LABEL, fd);
        long w = sys3(__NR_write, fd, argv[3], len(argv[3]));
        if (w < 0)
            fail(STEP_EXEC_LABEL, w);
        sys1(__NR_close, fd);
        sys1(__NR_close, PROC_FD);
    }

    long pid = sys6(__NR_clone, SIGCHLD, 0, 0, 0, 0, 0);
    if (pid < 0)
        fail(STEP_FORK, pid);
    if (pid > 0) {
        report(REPORT_SPAWNED, 0, (int)pid, 0);
        leave(0);
    }

    /* F, in the container's PID namespace. */
    reset_signals_and_umask();
    long r = sys1(__NR_setsid, 0);
    if (r < 0)
        fail(STEP_SESSION, r);
    if (argv[1][0] == 't') {
        r = sys3(__NR_ioctl, 0, TIOCSCTTY, 0);
        if (r < 0)
            fail(STEP_SESSION, r);
    }
    /* The report pipe closes as the command starts: dlx then knows the exec
     * succeeded. */
    sys3(__NR_fcntl, REPORT_FD, F_SETFD, FD_CLOEXEC);
    exec_first(argv + 5, n, argv + 5 + n, envp);
}
