// The one way tests run the workers-pipeline CLI: in-process through runCli with captured output,
// or as the real bin in a child process (tracked by PID through test/support/processes.ts).
import path from "node:path";
import { runCli } from "../../ci/cli/main.ts";
import type { Processes, StartedProcess } from "./processes.ts";

export const REPO = path.resolve(import.meta.dirname, "../..");
export const BIN = path.join(REPO, "bin/workers-pipeline.js");
/** A JS stack frame as Node prints it: never in a message meant for a user. */
export const STACK_LINE = /^\s+at /m;

export interface CliRun {
	code: number;
	stdout: string;
	stderr: string;
}

export interface CliOptions {
	/** The directory the CLI runs in (its cwd). Default: the repository. */
	cwd?: string;
	/** The whole environment: nothing of the test runner's leaks in except PATH. */
	env?: Record<string, string | undefined>;
	isTTY?: boolean;
	signal?: AbortSignal;
}

/** runCli in-process with stdout and stderr captured. */
export async function captureCli(
	argv: readonly string[],
	options: CliOptions = {},
): Promise<CliRun> {
	let stdout = "";
	let stderr = "";
	const code = await runCli(argv, {
		stdout: (text) => {
			stdout += text;
		},
		stderr: (text) => {
			stderr += text;
		},
		env: { PATH: process.env.PATH, ...options.env },
		cwd: options.cwd ?? REPO,
		isTTY: options.isTTY ?? false,
		signal: options.signal,
	});
	return { code, stdout, stderr };
}

export interface SpawnCliOptions extends CliOptions {
	timeoutMs?: number;
}

const binArgs = (argv: readonly string[], options: SpawnCliOptions) => {
	// bin/ re-executes itself under .tools/node on Node < 22: the PID would not be the CLI's.
	if (Number(process.versions.node.split(".")[0]) < 22) {
		throw new Error("run the tests with Node >= 22 (bash scripts/node24.sh npx vitest ...)");
	}
	return {
		file: process.execPath,
		args: [BIN, ...argv],
		cwd: options.cwd ?? REPO,
		env: { PATH: process.env.PATH, HOME: process.env.HOME, ...options.env },
		timeoutMs: options.timeoutMs ?? 120_000,
		signal: options.signal,
	};
};

/** The real bin as a child process, to completion. */
export async function spawnCli(
	processes: Processes,
	argv: readonly string[],
	options: SpawnCliOptions = {},
): Promise<CliRun & { signal: string | null; timedOut: boolean }> {
	const result = await processes.run(binArgs(argv, options));
	return {
		code: result.exitCode ?? -1,
		signal: result.signal,
		timedOut: result.timedOut,
		stdout: result.stdout,
		stderr: result.stderr,
	};
}

/** The real bin started in the background (concurrent runs, Ctrl-C); `done` settles at exit. */
export function startCli(
	processes: Processes,
	argv: readonly string[],
	options: SpawnCliOptions = {},
): Promise<StartedProcess> {
	return processes.start(binArgs(argv, options));
}
