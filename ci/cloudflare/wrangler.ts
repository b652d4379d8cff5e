import { createRequire } from "node:module";
import path from "node:path";
import type { ProcessResult } from "../errors.ts";
import { runProcess } from "../process.ts";

export interface RunWranglerOptions {
	args: readonly string[];
	cwd: string;
	/** The whole environment the process gets (the CLI passes its own); defaults are added. */
	env: Readonly<Record<string, string | undefined>>;
	timeoutMs?: number;
	signal?: AbortSignal;
	onOutput?: (chunk: string) => void;
}

let wranglerBin: string | undefined;

/** The wrangler this package depends on, so results never depend on a global install. */
export function resolveWranglerBin(): string {
	if (!wranglerBin) {
		const require = createRequire(import.meta.url);
		const pkg = require.resolve("wrangler/package.json");
		wranglerBin = path.join(path.dirname(pkg), "bin", "wrangler.js");
	}
	return wranglerBin;
}

/** Runs wrangler with metrics off and stdin closed (so it never prompts); the caller judges the result. */
export function runWrangler(options: RunWranglerOptions): Promise<ProcessResult> {
	return runProcess({
		file: process.execPath,
		args: [resolveWranglerBin(), ...options.args],
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
