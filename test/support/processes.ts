// The one way tests start processes: ci/process.ts's runProcess (own process group, one result
// shape), with every PID tracked so a test can always stop what it started — by PID, never by name.
import { type ProcessResult, type RunProcessOptions, runProcess } from "../../ci/process.ts";

export type { ProcessResult };

export interface StartedProcess {
	pid: number;
	/** Settles when the process has exited (never rejects: a failure is a result). */
	done: Promise<ProcessResult>;
	/** Signals the whole process group (default SIGTERM). */
	kill(signal?: NodeJS.Signals): void;
}

export interface Processes {
	/** Runs to completion. */
	run(options: RunProcessOptions): Promise<ProcessResult>;
	/** Starts and returns once the PID is known (servers, concurrent runs, Ctrl-C tests). */
	start(options: RunProcessOptions): Promise<StartedProcess>;
	/** PIDs still running. */
	running(): number[];
	/** SIGKILLs every process group still running, by PID; safe to call twice. */
	stopAll(): void;
}

/** Signals a process group, falling back to the PID; silent when it is already gone. */
export function signalGroup(pid: number, signal: NodeJS.Signals = "SIGKILL"): void {
	try {
		process.kill(-pid, signal);
	} catch {
		try {
			process.kill(pid, signal);
		} catch {
			// Already gone.
		}
	}
}

export function isAlive(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch {
		return false;
	}
}

/** A set of tracked processes; call stopAll() in afterEach/afterAll. */
export function trackProcesses(): Processes {
	const live = new Set<number>();
	const start = async (options: RunProcessOptions): Promise<StartedProcess> => {
		let pid: number | undefined;
		// runProcess reports the PID synchronously, before it returns.
		const done = runProcess({
			...options,
			onSpawn: (p) => {
				pid = p;
				live.add(p);
				options.onSpawn?.(p);
			},
		}).then((result) => {
			if (pid !== undefined) live.delete(pid);
			return result;
		});
		if (pid === undefined) {
			const result = await done;
			throw new Error(`cannot start ${result.command}: ${result.stderr.trim()}`);
		}
		const started = pid;
		return { pid: started, done, kill: (signal = "SIGTERM") => signalGroup(started, signal) };
	};
	return {
		start,
		run: async (options) => {
			let pid: number | undefined;
			const result = await runProcess({
				...options,
				onSpawn: (p) => {
					pid = p;
					live.add(p);
					options.onSpawn?.(p);
				},
			});
			if (pid !== undefined) live.delete(pid);
			return result;
		},
		running: () => [...live],
		stopAll() {
			for (const pid of live) signalGroup(pid, "SIGKILL");
			live.clear();
		},
	};
}
