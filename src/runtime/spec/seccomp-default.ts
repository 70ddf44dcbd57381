/**
 * Docker's default seccomp policy, written as our own rule table: a base set of syscalls every
 * container may make, plus syscalls a container may make only while it holds a capability
 * (CAP_SYS_ADMIN gates `mount`, `unshare`, `setns`, namespace `clone` flags…), the `clone` flag
 * mask, the allowed `personality` values and the per-architecture extras. Everything else fails
 * with EPERM. The semantics follow moby's `profiles/seccomp/default.json`; the table is ours and
 * is compiled into an OCI seccomp section for one capability set and this host's architecture.
 */
import { readFileSync } from 'node:fs';
import type { OciSeccomp } from './types.js';

type Syscalls = OciSeccomp['syscalls'];
type Arg = NonNullable<Syscalls[number]['args']>[number];

/** Splits a whitespace-separated list of syscall names. */
const names = (s: string): string[] => s.trim().split(/\s+/);

/** Allowed to every container, whatever its capabilities. */
const BASE = names(`
  accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32
  clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
  clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat
  dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2
  epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit exit_group
  faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat
  fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr
  fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64
  futex futex_time64 futex_waitv futimesat getcpu getcwd getdents getdents64
  getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer
  getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid getresgid32
  getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt
  get_thread_area gettid gettimeofday getuid getuid32 getxattr
  inotify_add_watch inotify_init inotify_init1 inotify_rm_watch
  io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get
  ioprio_set io_setup io_submit io_uring_enter io_uring_register io_uring_setup ipc kill
  landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr
  link linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64
  madvise membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat
  mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open
  mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap
  msgctl msgget msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep
  newfstatat _newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2
  pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2
  prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2
  read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
  remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq
  rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
  rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo
  sched_getaffinity sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min
  sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity
  sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select
  semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg
  sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32
  setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid
  setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid setsockopt
  set_thread_area set_tid_address setuid setuid32 setxattr shmat shmctl shmdt shmget
  shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall socketpair splice
  stat stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs sysinfo
  tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64
  timer_settime timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64
  timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname
  unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid
  write writev
`);

/** Syscalls allowed only while the container holds the capability. */
const BY_CAPABILITY: Record<string, string[]> = {
  CAP_SYS_ADMIN: names(`
    bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount
    mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname
    sethostname setns syslog umount umount2 unshare`),
  CAP_DAC_READ_SEARCH: ['open_by_handle_at'],
  CAP_SYS_BOOT: ['reboot'],
  CAP_SYS_CHROOT: ['chroot'],
  CAP_SYS_MODULE: names('delete_module init_module finit_module'),
  CAP_SYS_PACCT: ['acct'],
  CAP_SYS_PTRACE: names('kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace'),
  CAP_SYS_RAWIO: names('iopl ioperm'),
  CAP_SYS_TIME: names('settimeofday stime clock_settime clock_settime64'),
  CAP_SYS_TTY_CONFIG: ['vhangup'],
  CAP_SYS_NICE: names('get_mempolicy mbind set_mempolicy set_mempolicy_home_node'),
  CAP_SYSLOG: ['syslog'],
  CAP_BPF: ['bpf'],
  CAP_PERFMON: ['perf_event_open'],
};

/** Allowed on one architecture family only (Node's `process.arch` names). */
const BY_ARCH: Record<string, string[]> = {
  x64: names('arch_prctl modify_ldt'),
  ia32: ['modify_ldt'],
  arm64: names('arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls'),
  arm: names('arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls'),
  ppc64: names('sync_file_range2 swapcontext'),
  s390x: names('s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr'),
  riscv64: ['riscv_flush_icache'],
};

/** libseccomp's names for the native architecture and the compat ones a process may switch to. */
const ARCHITECTURES: Record<string, string[]> = {
  x64: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  arm64: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
  s390x: ['SCMP_ARCH_S390X', 'SCMP_ARCH_S390'],
  ppc64: ['SCMP_ARCH_PPC64LE'],
  riscv64: ['SCMP_ARCH_RISCV64'],
};

/**
 * Namespace flags of clone(2): CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID |
 * NEWNET. Without CAP_SYS_ADMIN, clone is allowed only when none of them is set.
 */
export const CLONE_NAMESPACE_FLAGS =
  0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;

/**
 * personality(2) values a container may set: PER_LINUX, PER_LINUX32, UNAME26, PER_LINUX32|UNAME26,
 * and 0xffffffff (the query that changes nothing).
 */
export const PERSONALITY_VALUES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

/** AF_VSOCK: the one socket family a container may not open. */
const AF_VSOCK = 40;

const EPERM = 1;
const ENOSYS = 38;

function kernelAtLeast(major: number, minor: number): boolean {
  try {
    const [a, b] = readFileSync('/proc/sys/kernel/osrelease', 'utf8').split('.').map(Number);
    return a > major || (a === major && b >= minor);
  } catch {
    return true;
  }
}

const allow = (list: string[], args?: Arg[]): Syscalls[number] => ({
  names: list,
  action: 'SCMP_ACT_ALLOW',
  ...(args ? { args } : {}),
});

/** Docker's default policy for a container holding `caps`, on `arch` (defaults to this host's). */
export function dockerDefaultSeccomp(caps: readonly string[], arch: string = process.arch): OciSeccomp {
  const has = (c: string) => caps.includes(c);
  const syscalls: Syscalls = [allow(BASE)];
  // ptrace needs 4.8: before it, a tracer could change a syscall after seccomp checked it.
  if (kernelAtLeast(4, 8)) syscalls.push(allow(names('process_vm_readv process_vm_writev ptrace')));
  syscalls.push(allow(['socket'], [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_NE' }]));
  for (const v of PERSONALITY_VALUES)
    syscalls.push(allow(['personality'], [{ index: 0, value: v, op: 'SCMP_CMP_EQ' }]));
  if (BY_ARCH[arch]) syscalls.push(allow(BY_ARCH[arch]));
  for (const [cap, list] of Object.entries(BY_CAPABILITY)) if (has(cap)) syscalls.push(allow(list));
  if (!has('CAP_SYS_ADMIN')) {
    // s390's clone takes the flags as its second argument.
    const index = arch === 's390x' ? 1 : 0;
    syscalls.push(
      allow(['clone'], [{ index, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }]),
    );
    // clone3 passes its flags in memory, out of seccomp's reach: ENOSYS makes libc fall back to clone.
    syscalls.push({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS });
  }
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    architectures: ARCHITECTURES[arch] ?? [],
    syscalls,
  };
}
