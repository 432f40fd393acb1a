// Where the CPU goes during one measured window: the load generator (this process), the Node
// server process, the database server's processes, and the rest of the (shared) machine, from
// /proc utime+stime deltas. Divided by the holds (or bookings, or requests) of the window, it
// gives CPU µs per unit of work for each, comparable between the service and the canned-reply
// ceiling, and between trees.
import { readFileSync } from 'node:fs';
import { processTreeCpu, readCpuMs } from './processes.ts';

/** Reads the cumulative CPU (ms) of the database server's processes, or null when it cannot. */
export interface DatabaseCpuProbe {
  /** What is summed, for the report: "postgres: postmaster 1234 and its children". */
  description: string;
  read(): { cpuMs: number; processes: number } | null;
}

/** A PostgreSQL server on this machine: the postmaster and every process under it. */
export function postmasterProbe(postmasterPid: number): DatabaseCpuProbe {
  return {
    description: `postgres: postmaster ${postmasterPid} and every process under it`,
    read: () => processTreeCpu(postmasterPid),
  };
}

/** A single-process server (mysqld: one process, many threads). */
export function processProbe(pid: number, name: string): DatabaseCpuProbe {
  return {
    description: `${name}: process ${pid} (all threads)`,
    read: () => {
      const cpuMs = readCpuMs(pid);
      return cpuMs > 0 ? { cpuMs, processes: 1 } : null;
    },
  };
}

const USER_HZ = 100;

/** Busy CPU time of the whole machine (all CPUs), in ms; steal and guest time left out. */
function machineBusyMs(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice
  const busy = (fields[0] ?? 0) + (fields[1] ?? 0) + (fields[2] ?? 0) + (fields[5] ?? 0) + (fields[6] ?? 0);
  return (busy * 1000) / USER_HZ;
}

export interface CpuSplit {
  windowSeconds: number;
  /** CPU-seconds in the window. */
  loadgenSeconds: number;
  serverSeconds: number | null;
  /** null when the database runs inside the server (PGlite) or is not on this machine. */
  databaseSeconds: number | null;
  databaseProcesses: number | null;
  /** Everything busy on the machine. */
  machineSeconds: number;
  /** The machine minus the three above: other work on the shared box (and the kernel's share of ours). */
  otherSeconds: number;
  /** What one unit of work is: a hold, a booking, a request. */
  unit: string;
  units: number;
  /** CPU µs per unit. */
  loadgenUs: number;
  serverUs: number | null;
  databaseUs: number | null;
  machineUs: number;
  otherUs: number;
}

export interface CpuWindow {
  /** Ends the window; `units` is the work done in it (e.g. holds granted). */
  stop(units: number, unit: string): CpuSplit;
}

/** Starts a window now. `serverPid` is the Node server process (absent for --url). */
export function cpuWindow(serverPid: number | undefined, database: DatabaseCpuProbe | null): CpuWindow {
  const started = performance.now();
  const loadgen = process.cpuUsage();
  const server = serverPid === undefined ? null : readCpuMs(serverPid);
  const db = database?.read() ?? null;
  const machine = machineBusyMs();
  return {
    stop(units, unit) {
      const windowSeconds = (performance.now() - started) / 1000;
      const own = process.cpuUsage(loadgen);
      const loadgenSeconds = (own.user + own.system) / 1e6;
      const serverSeconds = server === null ? null : (readCpuMs(serverPid!) - server) / 1000;
      const dbNow = db === null ? null : (database?.read() ?? null);
      const databaseSeconds = db === null || dbNow === null ? null : (dbNow.cpuMs - db.cpuMs) / 1000;
      const machineSeconds = (machineBusyMs() - machine) / 1000;
      const otherSeconds = machineSeconds - loadgenSeconds - (serverSeconds ?? 0) - (databaseSeconds ?? 0);
      const per = (seconds: number) => (units > 0 ? (seconds * 1e6) / units : Number.NaN);
      return {
        windowSeconds,
        loadgenSeconds,
        serverSeconds,
        databaseSeconds,
        databaseProcesses: dbNow?.processes ?? null,
        machineSeconds,
        otherSeconds,
        unit,
        units,
        loadgenUs: per(loadgenSeconds),
        serverUs: serverSeconds === null ? null : per(serverSeconds),
        databaseUs: databaseSeconds === null ? null : per(databaseSeconds),
        machineUs: per(machineSeconds),
        otherUs: per(otherSeconds),
      };
    },
  };
}
