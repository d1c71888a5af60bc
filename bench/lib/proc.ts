import { readdir, readlink } from 'node:fs/promises';

/** CPU time and resident memory of a process, read from /proc (Linux). */

/**
 * CPU time of `pid` in milliseconds: the time every one of its threads has run, from
 * `/proc/<pid>/task/<tid>/schedstat` (nanoseconds). `/proc/<pid>/stat` counts in
 * 10 ms ticks, too coarse here: on a fast machine the relay relays 50,000 tokens in
 * ~140 ms of CPU, and one tick was 7% of that. Threads live as long as the process
 * here (Bun's HTTP client, the garbage collector's, the JIT's); one that ended
 * between two readings would take its time with it.
 */
export const cpuMs = async (pid: number) => (await cpuAndJitMs(pid)).all;

/**
 * CPU time of `pid` (ms) in all and in its JIT compiler's threads (JavaScriptCore's
 * `JITWorker`), so a scenario can tell compiling from running.
 */
export const cpuAndJitMs = async (pid: number) => {
  let all = 0;
  let jit = 0;
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    const [schedstat, comm] = await Promise.all(
      ['schedstat', 'comm'].map((f) =>
        Bun.file(`/proc/${pid}/task/${tid}/${f}`)
          .text()
          .catch(() => '0'),
      ),
    );
    const ns = Number(schedstat?.split(' ')[0]);
    all += ns;
    if (comm?.startsWith('JITWorker')) jit += ns;
  }
  return { all: all / 1e6, jit: jit / 1e6 };
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

/** Milliseconds of each authenticated GET of `urls`, `rounds` times over, one at a time. */
export const timeGets = async (urls: string[], token: string, rounds: number) => {
  const took: number[] = [];
  for (let round = 0; round < rounds; round++)
    for (const url of urls) {
      const started = performance.now();
      const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`${url}: ${res.status}`);
      took.push(performance.now() - started);
    }
  return took;
};
