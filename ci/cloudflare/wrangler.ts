import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { type ProcessResult, runProcess } from "../process.ts";

export interface RunWranglerOptions {
	args: readonly string[];
	cwd: string;
	/** Use this project's own wrangler when it has one. */
	projectRoot?: string;
	/** The whole environment the process gets (the CLI passes its own); defaults are added. */
	env: Readonly<Record<string, string | undefined>>;
	timeoutMs?: number;
	signal?: AbortSignal;
	onOutput?: (chunk: string) => void;
}

let ownWranglerBin: string | undefined;

/**
 * The project's own wrangler when it has one (the version its team pinned), else the one this
 * package depends on; never a global install.
 */
export function resolveWranglerBin(projectRoot?: string): string {
	if (projectRoot) {
		const local = path.join(projectRoot, "node_modules", "wrangler", "bin", "wrangler.js");
		if (existsSync(local)) return local;
	}
	if (!ownWranglerBin) {
		const require = createRequire(import.meta.url);
		const pkg = require.resolve("wrangler/package.json");
		ownWranglerBin = path.join(path.dirname(pkg), "bin", "wrangler.js");
	}
	return ownWranglerBin;
}

/** The version of the wrangler resolveWranglerBin picks, for cache keys and reports. */
export function wranglerVersion(projectRoot?: string): string {
	const bin = resolveWranglerBin(projectRoot);
	try {
		return (
			JSON.parse(readFileSync(path.join(path.dirname(bin), "..", "package.json"), "utf8")) as {
				version: string;
			}
		).version;
	} catch {
		return "unknown";
	}
}

/** Runs wrangler with metrics off and stdin closed (so it never prompts); the caller judges the result. */
export function runWrangler(options: RunWranglerOptions): Promise<ProcessResult> {
	return runProcess({
		file: process.execPath,
		args: [resolveWranglerBin(options.projectRoot), ...options.args],
		cwd: options.cwd,
		env: {
			CI: "true",
			WRANGLER_SEND_METRICS: "false",
			WRANGLER_HIDE_BANNER: "true",
			NO_COLOR: "1",
			FORCE_COLOR: "0",
			...options.env,
		},
		timeoutMs: options.timeoutMs,
		signal: options.signal,
		onOutput: options.onOutput,
	});
}
