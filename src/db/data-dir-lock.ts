// One process owns a PGlite DATA_DIR. PGlite keeps the database in the memory of the process
// that opened it and writes it back to the files; two processes on the same files overwrite each
// other (we saw WASM aborts, and two sweepers expiring the same hold). A lock file naming the
// owner makes the second process refuse to start, with a message that says who has it.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const LOCK_FILE = 'box-office.lock';

interface Owner {
  pid: number;
  host: string;
  command: string;
  since: string;
}

export class DataDirInUse extends Error {
  constructor(dataDir: string, owner: Owner) {
    super(
      `DATA_DIR ${dataDir} is in use by process ${owner.pid} on ${owner.host} (${owner.command}, since ${owner.since}). ` +
        'An embedded PGlite database belongs to one process: stop that one first, or run several processes ' +
        'on PostgreSQL or MySQL (DATABASE_URL).',
    );
    this.name = 'DataDirInUse';
  }
}

/** Takes the lock, or throws DataDirInUse; returns the function that gives it back. */
export function lockDataDir(dataDir: string): () => void {
  const path = join(dataDir, LOCK_FILE);
  const me: Owner = {
    pid: process.pid,
    host: hostname(),
    command: process.argv.slice(1).join(' ') || 'node',
    since: new Date().toISOString(),
  };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      // 'wx' fails if the file exists: creating it is the atomic test-and-set.
      writeFileSync(path, JSON.stringify(me), { flag: 'wx' });
      let held = true;
      return () => {
        if (!held) return;
        held = false;
        rmSync(path, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = readOwner(path);
    if (owner !== null && isAlive(owner)) throw new DataDirInUse(dataDir, owner);
    // The owner died without cleaning up (SIGKILL, power loss): the lock is stale.
    rmSync(path, { force: true });
  }
  throw new DataDirInUse(dataDir, readOwner(path) ?? { pid: -1, host: '?', command: '?', since: '?' });
}

function readOwner(path: string): Owner | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Owner;
  } catch {
    return null;
  }
}

function isAlive(owner: Owner): boolean {
  // A lock from another machine (a shared volume) cannot be checked: believe it.
  if (owner.host !== hostname()) return true;
  // Our own pid in a lock we have not taken yet: a previous life of this container's process.
  if (owner.pid === process.pid) return false;
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
