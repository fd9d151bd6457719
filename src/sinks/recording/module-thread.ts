/**
 * Starts a worker thread on a module beside the caller: the .js file in dist; from source, a
 * bootstrap that registers tsx's loader in the thread (a dev dependency, as the tests are:
 * Node 20 gives a thread no `--import`) and then imports the .ts file. The recording's I/O
 * thread (io-thread.ts) and its finish thread (io-worker.ts) start this way.
 */
import { Worker } from 'node:worker_threads';

/** `callerUrl` is the caller's import.meta.url; `module` the file's name without extension; `name` the thread's (also its workerData). */
export function spawnModuleThread(callerUrl: string, module: string, name: string): Worker {
  // execArgv is explicit: the parent's flags (--input-type, --cpu-prof, a test runner's) are not
  // the thread's. Descriptors pass between the recording threads (a finish hands its file on), so
  // Node's per-thread descriptor tracking is off: it warns when a thread closes a descriptor
  // another opened, and closes a thread's descriptors when the thread exits (a thread of ours
  // that dies leaves its files open until the process ends; recover.ts repairs them at the next
  // start).
  const opts = { execArgv: [], name, workerData: name, trackUnmanagedFds: false };
  if (!callerUrl.endsWith('.ts')) return new Worker(new URL(`./${module}.js`, callerUrl), opts);
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const entry = JSON.stringify(new URL(`./${module}.ts`, callerUrl).href);
  return new Worker(`import(${tsx}).then((tsx) => { tsx.register(); return import(${entry}); });`, { ...opts, eval: true });
}
