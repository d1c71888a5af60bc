import { readdir, readlink } from 'node:fs/promises';

/** CPU time and resident memory of a process, read from /proc (Linux). */

const CLOCK_TICKS = 100; // getconf CLK_TCK on Linux x86-64

/** user + system CPU time of `pid` in milliseconds. */
export const cpuMs = async (pid: number) => {
  const stat = await Bun.file(`/proc/${pid}/stat`).text();
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
  return (ticks * 1000) / CLOCK_TICKS;
};

/** The inodes of the sockets `pid` has open (its /proc fd links name them). */
export const socketInodes = async (pid: number) => {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [])) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode) inodes.add(inode);
  }
  return inodes;
};

/** The inodes of the TCP sockets listening on `port`, whichever process holds them. */
export const listeningInodes = async (port: number) => {
  const suffix = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const tables = await Promise.all(['tcp', 'tcp6'].map((t) => Bun.file(`/proc/net/${t}`).text()));
  return tables
    .join('\n')
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f[1]?.endsWith(suffix) && f[3] === '0A') // 0A: LISTEN
    .map((f) => f[9] as string);
};

/** True when `pid` itself holds a socket listening on `port` (SO_REUSEPORT lets several). */
export const listensOn = async (pid: number, port: number) => {
  const own = await socketInodes(pid);
  return (await listeningInodes(port)).some((inode) => own.has(inode));
};

/** Resident set size of `pid` in kilobytes. */
export const rssKb = async (pid: number) => {
  const status = await Bun.file(`/proc/${pid}/status`).text();
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
};

export const machine = async () => {
  const cpuinfo = await Bun.file('/proc/cpuinfo').text();
  const model = /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1] ?? 'unknown CPU';
  const meminfo = await Bun.file('/proc/meminfo').text();
  const memGb = Math.round(Number(/MemTotal:\s+(\d+)/.exec(meminfo)?.[1] ?? 0) / 1024 / 1024);
  return `${navigator.hardwareConcurrency} × ${model}, ${memGb} GiB, Bun ${Bun.version}`;
};

export const percentile = (values: number[], p: number) => {
  if (!values.length) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
};
