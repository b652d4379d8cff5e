import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { findPnpRuntime, pnpBins, withPnpNodeOptions } from "./pnp.ts";
import { projectBinDirs } from "./workspace.ts";

/** One shape for a finished process, failed or not. */
export interface ProcessResult {
	command: string;
	cwd: string;
	exitCode: number | null;
	signal: string | null;
	stdout: string;
	stderr: string;
	durationMs: number;
	failed: boolean;
	timedOut: boolean;
}

export interface RunProcessOptions {
	file: string;
	args: readonly string[];
	cwd: string;
	env?: Readonly<Record<string, string | undefined>>;
	timeoutMs?: number;
	signal?: AbortSignal;
	/** Called with each chunk of output as it arrives (progress). */
	onOutput?: (chunk: string) => void;
	/** Called once the process has a PID (its process group id too), e.g. to track it. */
	onSpawn?: (pid: number) => void;
}

/** Runs a process to completion and never throws: success and failure have one shape. */
export function runProcess(options: RunProcessOptions): Promise<ProcessResult> {
	const started = performance.now();
	const command = [options.file, ...options.args].join(" ");
	return new Promise((resolve) => {
		const child = spawn(options.file, options.args, {
			cwd: options.cwd,
			env: options.env as NodeJS.ProcessEnv | undefined,
			stdio: ["ignore", "pipe", "pipe"],
			// Own process group, so a timeout or abort stops its children too (by PID, never by name).
			detached: true,
		});
		if (child.pid !== undefined) options.onSpawn?.(child.pid);
		let stdout = "";
		let stderr = "";
		let timedOut = false;
		let settled = false;
		const kill = () => {
			if (child.pid !== undefined && child.exitCode === null) {
				try {
					process.kill(-child.pid, "SIGKILL");
				} catch {
					child.kill("SIGKILL");
				}
			}
		};
		const timer = options.timeoutMs
			? setTimeout(() => {
					timedOut = true;
					kill();
				}, options.timeoutMs)
			: undefined;
		const onAbort = () => kill();
		options.signal?.addEventListener("abort", onAbort, { once: true });
		child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
			stdout += chunk;
			options.onOutput?.(chunk);
		});
		child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
			stderr += chunk;
			options.onOutput?.(chunk);
		});
		const finish = (exitCode: number | null, signal: string | null, extra = "") => {
			if (settled) return;
			settled = true;
			if (timer) clearTimeout(timer);
			options.signal?.removeEventListener("abort", onAbort);
			resolve({
				command,
				cwd: options.cwd,
				exitCode,
				signal,
				// Findings and --json quote this output: no colour codes, whatever the tool did
				// with NO_COLOR (some, such as astro check, colour anyway).
				stdout: stripAnsi(stdout),
				stderr: stripAnsi(stderr + extra),
				durationMs: Math.round(performance.now() - started),
				failed: exitCode !== 0 || timedOut,
				timedOut,
			});
		};
		child.on("error", (error) => finish(null, null, `\n${error.message}`));
		child.on("close", (code, signal) => finish(code, signal));
	});
}

// CSI (colours, cursor moves) and OSC (hyperlinks, titles) escape sequences: ESC is the point.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching terminal escapes
const ANSI = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)/g;

/** The text without terminal escape sequences. */
export const stripAnsi = (text: string): string =>
	text.includes("\u001b") ? text.replace(ANSI, "") : text;

/**
 * A tool from the project's own node_modules/.bin (or its workspace's), when it has one; in a
 * Yarn PnP project, the file of a dependency's binary (runTool runs it with Node).
 */
export function localBin(root: string, name: string): string | undefined {
	for (const dir of projectBinDirs(root)) {
		const file = path.join(dir, name);
		if (existsSync(file)) return file;
	}
	return pnpBins(root).get(name);
}

export interface RunToolOptions {
	file: string;
	args: readonly string[];
	/** The project root: the tool runs there, with its (and its workspace's) node_modules/.bin first on PATH. */
	cwd: string;
	env: Readonly<Record<string, string | undefined>>;
	signal?: AbortSignal;
	/** Default 15 minutes: a hung tool must not hold a CI job for hours. */
	timeoutMs?: number;
	onOutput?: (chunk: string) => void;
}

/**
 * How to start a project tool in `cwd`. In a Yarn PnP project a dependency's binary (by file, or
 * by name as a command names it) runs under Node with the project's runtime preloaded, as
 * `yarn run` runs it; elsewhere the command is unchanged. Also for tools started by spawn.
 */
export function toolCommand(
	cwd: string,
	file: string,
	args: readonly string[],
	env: Readonly<Record<string, string | undefined>>,
): { file: string; args: readonly string[]; env: Record<string, string | undefined> } {
	const pnp = findPnpRuntime(cwd);
	if (pnp === undefined) return { file, args, env: { ...env } };
	const bins = pnpBins(cwd);
	const bin = file.includes("/") ? file : bins.get(file);
	const viaNode = bin !== undefined && [...bins.values()].includes(bin);
	return {
		file: viaNode ? process.execPath : file,
		args: viaNode ? [bin, ...args] : args,
		env: { ...env, NODE_OPTIONS: withPnpNodeOptions(pnp, env.NODE_OPTIONS) },
	};
}

/** Runs a project tool (biome, tsc, the test command, a build) without colour, as runProcess does. */
export function runTool(options: RunToolOptions): Promise<ProcessResult> {
	const bins = projectBinDirs(options.cwd);
	const command = toolCommand(options.cwd, options.file, options.args, options.env);
	return runProcess({
		file: command.file,
		args: command.args,
		cwd: options.cwd,
		env: {
			...command.env,
			// The project's tools first, then the Node running this CLI, so a `#!/usr/bin/env node`
			// tool gets the same Node (and native-module ABI) even when the system Node is older.
			PATH: [...bins, path.dirname(process.execPath), options.env.PATH ?? ""].join(path.delimiter),
			FORCE_COLOR: "0",
			NO_COLOR: "1",
		},
		signal: options.signal,
		timeoutMs: options.timeoutMs ?? 15 * 60_000,
		onOutput: options.onOutput,
	});
}
