// Self time of a V8 CPU profile (node --cpu-prof, as `npm run bench -- --cpu-prof` writes them
// into .bench/profiles/<server>/), aggregated by package or module:
//   tsx bench/profile-summary.ts FILE.cpuprofile|DIR [--by package|file|function] [--top N]
//                                [--window START_US,END_US]
// The profiles in a DIR (one per thread of a server process) are summed; (idle) is left out of
// the shares, which are of the busy time.
// --by package (default): a node_modules package, a Node built-in module (node:net,
//   node:internal/streams), a directory of the service (src/holds), or V8's own buckets
//   ((garbage collector), (program), (idle)), or a builtin without a script, by name
//   ((native) writev: socket writes, the kernel's loopback work included).
// --window keeps only the samples taken in that span of the monotonic clock (µs, as the bench
//   records each measured window in its JSON as `window`); by default, when DIR/windows.json
//   exists (the bench writes it), each window named there is summarised separately.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: CallFrame }>;
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export type Grouping = 'package' | 'file' | 'function';

export interface ProfileEntry {
  name: string;
  ms: number;
  /** Fraction of the sampled time (in the window). */
  share: number;
}

export interface ProfileSummary {
  files: string[];
  /** Time covered by samples in the window, idle included (summed over the profiles: threads). */
  sampledMs: number;
  /** Of which idle: the thread waited for work. Shares below are of the rest (busy time). */
  idleMs: number;
  samples: number;
  top: ProfileEntry[];
}

const V8_BUCKETS = new Set(['(garbage collector)', '(program)', '(idle)', '(root)']);
const PROJECT_DIRS = ['src', 'dist', 'bench', 'bin', 'scripts', 'test'];

/** The path of a script inside its checkout (src/holds/holds.service.ts), or null. */
function projectPath(url: string): string | null {
  let path: string;
  try {
    path = url.startsWith('file://') ? fileURLToPath(url) : url;
  } catch {
    return null;
  }
  const parts = path.split('/');
  for (let i = parts.length - 2; i >= 0; i--) {
    if (PROJECT_DIRS.includes(parts[i]!)) return parts.slice(i).join('/');
  }
  return null;
}

function groupOf(frame: CallFrame, by: Grouping): string {
  const { functionName, url } = frame;
  if (url === '')
    // Builtins and C++ bindings have no script; their names say enough (writev: socket writes).
    return V8_BUCKETS.has(functionName) ? functionName : `(native) ${functionName || '?'}`;
  let module: string;
  let file: string;
  const nm = url.lastIndexOf('/node_modules/');
  if (url.startsWith('node:')) {
    const parts = url.slice(5).split('/');
    module = `node:${parts[0] === 'internal' ? parts.slice(0, Math.min(2, parts.length)).join('/') : parts[0]}`;
    file = url;
  } else if (nm >= 0) {
    const parts = url.slice(nm + '/node_modules/'.length).split('/');
    module = parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
    file = `${module}/${parts.slice(module.split('/').length).join('/')}`;
  } else {
    file = projectPath(url) ?? url;
    const parts = file.split('/');
    module = parts.length > 2 ? parts.slice(0, 2).join('/') : file;
  }
  if (by === 'package') return module;
  if (by === 'file') return file;
  return `${functionName || '(anonymous)'} ${file}:${frame.lineNumber + 1}`;
}

/**
 * Self time by group over one or more profiles (node --cpu-prof writes one per thread: the main
 * thread, and with tsx a loader-hooks thread), optionally only for samples taken in
 * [startUs, endUs] of V8's clock (the monotonic clock, as process.hrtime). Shares are of the
 * busy (non-idle) time.
 */
export function summarizeProfile(
  files: string | string[],
  options: { by?: Grouping; top?: number; window?: { startUs: number; endUs: number } } = {},
): ProfileSummary {
  const by = options.by ?? 'package';
  const groups = new Map<string, number>();
  let sampledUs = 0;
  let idleUs = 0;
  let counted = 0;
  const list = typeof files === 'string' ? [files] : files;
  for (const file of list) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
    const { samples, timeDeltas } = profile;
    const meanDelta = samples.length > 0 ? (profile.endTime - profile.startTime) / samples.length : 0;
    let at = profile.startTime;
    for (let i = 0; i < samples.length; i++) {
      at += timeDeltas[i] ?? 0;
      if (options.window !== undefined && (at < options.window.startUs || at > options.window.endUs)) continue;
      // A sample stands for the time until the next one.
      const us = timeDeltas[i + 1] ?? meanDelta;
      const name = groupOf(frames.get(samples[i]!)!, by);
      sampledUs += us;
      counted++;
      if (name === '(idle)') idleUs += us;
      else groups.set(name, (groups.get(name) ?? 0) + us);
    }
  }
  const busyUs = sampledUs - idleUs;
  const top = [...groups.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, options.top ?? 25)
    .map(([name, us]) => ({ name, ms: us / 1000, share: busyUs > 0 ? us / busyUs : 0 }));
  return { files: list, sampledMs: sampledUs / 1000, idleMs: idleUs / 1000, samples: counted, top };
}

/** The profiles in a directory (one per thread of the process), or the file itself. */
export function profilesIn(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .filter((name) => name.endsWith('.cpuprofile'))
    .map((name) => join(path, name))
    .sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs);
}

/** The file the bench writes beside a server's profile: the measured windows, by name. */
export const WINDOWS_FILE = 'windows.json';
export type Windows = Record<string, { startUs: number; endUs: number }>;

export function formatProfile(summary: ProfileSummary, title: string): string {
  const busy = summary.sampledMs - summary.idleMs;
  const lines = [
    `${title}: ${busy.toFixed(0)} ms busy of ${summary.sampledMs.toFixed(0)} ms sampled (${summary.samples} samples, ` +
      `${summary.files.length} profile(s)); self time, % of busy`,
  ];
  for (const entry of summary.top) {
    lines.push(`  ${entry.ms.toFixed(1).padStart(9)} ms ${(entry.share * 100).toFixed(1).padStart(5)}%  ${entry.name}`);
  }
  return lines.join('\n');
}

function main(argv: string[]): void {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      by: { type: 'string' },
      top: { type: 'string' },
      window: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  });
  if (values.help || positionals.length === 0) {
    console.log(
      'usage: tsx bench/profile-summary.ts FILE.cpuprofile|DIR... [--by package|file|function] [--top N] [--window START_US,END_US]',
    );
    return;
  }
  const by = (values.by ?? 'package') as Grouping;
  if (!['package', 'file', 'function'].includes(by)) throw new Error('--by takes package, file or function');
  const top = values.top === undefined ? 25 : Number(values.top);
  for (const path of positionals.map((p) => resolve(p))) {
    const windowsFile = join(statSync(path).isDirectory() ? path : resolve(path, '..'), WINDOWS_FILE);
    let windows: Windows = { 'whole profile': { startUs: -Infinity, endUs: Infinity } };
    if (values.window !== undefined) {
      const [startUs, endUs] = values.window.split(',').map(Number);
      windows = { window: { startUs: startUs!, endUs: endUs! } };
    } else if (existsSync(windowsFile)) {
      windows = JSON.parse(readFileSync(windowsFile, 'utf8')) as Windows;
    }
    // The profiles of one directory are the threads of one server process: summed.
    const files = profilesIn(path);
    for (const [name, window] of Object.entries(windows)) {
      console.log(`${formatProfile(summarizeProfile(files, { by, top, window }), `${path} [${name}]`)}\n`);
    }
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2));
}
