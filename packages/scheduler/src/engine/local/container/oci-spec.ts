/**
 * The OCI runtime spec (config.json) of one berth container, as a pure
 * function of what the container may see and use. runc runs it.
 */

/** The host's system directories every container sees, read-only. */
export const SYSTEM_DIRECTORIES = ["/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc"] as const;

/** CFS period of the CPU quota; the quota is cpuMillis of a core per period. */
export const CPU_PERIOD_US = 100_000;

/** Processes (threads included) one container may run at most: stops a fork bomb at its own door. */
export const PIDS_LIMIT = 4096;

/** Size of the private /tmp; tmpfs pages count against the container's memory limit. */
const TMP_SIZE = "256m";

/**
 * Syscalls a PaaS process never needs and that widen the kernel's attack
 * surface: mounting, namespaces, kernel modules, keyrings, BPF, tracing,
 * rebooting. Everything else is allowed (the container runs unprivileged with
 * no capabilities, so most privileged calls fail anyway); this list is the
 * seccomp layer on top.
 */
export const DENIED_SYSCALLS = [
  "acct",
  "add_key",
  "bpf",
  "clock_adjtime",
  "clock_settime",
  "create_module",
  "delete_module",
  "finit_module",
  "fsconfig",
  "fsmount",
  "fsopen",
  "fspick",
  "get_kernel_syms",
  "init_module",
  "ioperm",
  "iopl",
  "kcmp",
  "kexec_file_load",
  "kexec_load",
  "keyctl",
  "lookup_dcookie",
  "mount",
  "mount_setattr",
  "move_mount",
  "nfsservctl",
  "open_by_handle_at",
  "open_tree",
  "perf_event_open",
  "personality",
  "pivot_root",
  "process_vm_readv",
  "process_vm_writev",
  "ptrace",
  "query_module",
  "quotactl",
  "reboot",
  "request_key",
  "setns",
  "settimeofday",
  "swapoff",
  "swapon",
  "sysfs",
  "umount",
  "umount2",
  "unshare",
  "uselib",
  "userfaultfd",
  "ustat",
  "vhangup",
] as const;

/** What one container is made of. */
export interface ContainerSpecInput {
  /** A shell command line, run by `/bin/sh -c` under a tiny init. */
  command: string;
  env: Record<string, string>;
  /** The release's unpacked source on the host; mounted read-only at the same path, which is also the working directory. */
  sourceDir: string;
  /** The unprivileged uid (and gid) the command runs as. */
  uid: number;
  hostname: string;
  cpuMillis: number;
  memoryMb: number;
  /** The cgroup, absolute from the hierarchy's root (e.g. `/berth/shop-web-v3-x7k2q`). */
  cgroupsPath: string;
  /** A network namespace prepared beforehand (`/run/netns/...`); undefined: a fresh one with only loopback. */
  netnsPath: string | undefined;
  /** A host file shown read-only as the container's `/etc/hosts` (the `<app>-<process>` names). */
  hostsFile: string | undefined;
  /** Host directories the container may write to, mounted at the same path (a release task's result). */
  writableDirs: string[];
  /** Whether to install the seccomp filter (the host's runc supports it). */
  seccomp: boolean;
  /** Whether the command waits for the go-ahead on stdin (see initArgs). */
  gated: boolean;
  /** The SYSTEM_DIRECTORIES this host has (an arm64 host has no /lib64). */
  systemDirectories: readonly string[];
}

/**
 * The container's process 1: a shell that runs the command as its child and
 * waits for it. Process 1 of a pid namespace ignores signals it has no
 * handler for, so an app run as process 1 would shrug off SIGTERM; as a
 * child it gets the signal like anywhere else (`runc kill --all`), and the
 * shell exits with the app's status.
 *
 * Gated, it first reads one line (or the end) of its stdin: the runtime
 * sets the container up with runc while nft learns its address, and lets
 * the command run once both are done, so its first connections already
 * pass the firewall. The command's own stdin is /dev/null either way (sh
 * gives it to a background command).
 */
export function initArgs(command: string, gated = false): string[] {
  return ["/bin/sh", "-c", `${gated ? "read -r _; " : ""}sh -c "$1" & wait $!`, "berth-init", command];
}

const bind = (path: string, writable: boolean) => ({
  destination: path,
  type: "bind",
  source: path,
  options: ["rbind", "nosuid", "nodev", writable ? "rw" : "ro"],
});

/** The config.json of a container (OCI runtime spec 1.0.2). */
export function containerSpec(input: ContainerSpecInput): Record<string, unknown> {
  const env = Object.entries(input.env).map(([key, value]) => `${key}=${value}`);
  const namespaces: Array<{ type: string; path?: string }> = [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }];
  namespaces.push(input.netnsPath === undefined ? { type: "network" } : { type: "network", path: input.netnsPath });
  const mounts: Record<string, unknown>[] = [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
    { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    // No /sys and no /sys/fs/cgroup: an app needs neither, and a cgroup v1 mount fails here.
    ...input.systemDirectories.map((path) => bind(path, false)),
    { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777", `size=${TMP_SIZE}`] },
    bind(input.sourceDir, false),
    ...input.writableDirs.map((path) => bind(path, true)),
  ];
  if (input.hostsFile !== undefined) {
    mounts.push({ destination: "/etc/hosts", type: "bind", source: input.hostsFile, options: ["bind", "nosuid", "nodev", "noexec", "ro"] });
  }
  const linux: Record<string, unknown> = {
    namespaces,
    cgroupsPath: input.cgroupsPath,
    resources: {
      devices: [{ allow: false, access: "rwm" }],
      memory: { limit: input.memoryMb * 1024 * 1024 },
      // Shares as Kubernetes derives them from a CPU request: under contention containers divide their parent's time by size.
      cpu: {
        quota: Math.round((input.cpuMillis / 1000) * CPU_PERIOD_US),
        period: CPU_PERIOD_US,
        shares: Math.max(2, Math.round((input.cpuMillis * 1024) / 1000)),
      },
      pids: { limit: PIDS_LIMIT },
    },
    maskedPaths: [
      "/proc/acpi",
      "/proc/asound",
      "/proc/kcore",
      "/proc/keys",
      "/proc/latency_stats",
      "/proc/timer_list",
      "/proc/timer_stats",
      "/proc/sched_debug",
      "/proc/scsi",
      "/sys/firmware",
    ],
    readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
  };
  if (input.seccomp) {
    linux.seccomp = {
      defaultAction: "SCMP_ACT_ALLOW",
      architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
      syscalls: [{ names: [...DENIED_SYSCALLS], action: "SCMP_ACT_ERRNO", errnoRet: 1 }],
    };
  }
  return {
    ociVersion: "1.0.2-dev",
    process: {
      terminal: false,
      user: { uid: input.uid, gid: input.uid, additionalGids: [] },
      args: initArgs(input.command, input.gated),
      env,
      cwd: input.sourceDir,
      // No capabilities at all: the command runs as an unprivileged uid and listens above 1024.
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
      noNewPrivileges: true,
    },
    root: { path: "rootfs", readonly: true },
    hostname: input.hostname,
    mounts,
    linux,
  };
}
