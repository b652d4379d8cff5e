import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { stripVTControlCharacters } from "node:util";
import type { ProjectConfig } from "../config/schema.ts";
import { WRANGLER_CONFIG_CANDIDATES } from "../constants.ts";
import { CiError } from "../errors.ts";
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
 * The project's own wrangler when it has one (the version its team pinned, found as Node finds
 * it from the project directory, so a hoisted monorepo install counts), else the one this
 * package depends on; never a global install.
 */
export function resolveWranglerBin(projectRoot?: string): string {
	const local = projectRoot ? wranglerBinFrom(path.join(projectRoot, "package.json")) : undefined;
	if (local) return local;
	ownWranglerBin ??= wranglerBinFrom(fileURLToPath(import.meta.url));
	if (!ownWranglerBin) {
		throw new CiError(
			"wrangler is not installed next to workers-pipeline; reinstall it (npm i -D workers-pipeline).",
			"E_INTERNAL",
		);
	}
	return ownWranglerBin;
}

// wrangler's package.json names its CLI in "bin" (bin/wrangler.js today).
function wranglerBinFrom(from: string): string | undefined {
	try {
		const manifest = createRequire(from).resolve("wrangler/package.json");
		const pkg = JSON.parse(readFileSync(manifest, "utf8")) as {
			bin?: string | Record<string, string>;
		};
		const bin = typeof pkg.bin === "string" ? pkg.bin : pkg.bin?.wrangler;
		return path.resolve(path.dirname(manifest), bin ?? "bin/wrangler.js");
	} catch {
		return undefined;
	}
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

/**
 * Runs wrangler with metrics off and stdin closed (so it never prompts); the caller judges the
 * result. Colour is off whatever the caller's environment says (a CI's FORCE_COLOR=1 makes
 * wrangler's chalk print escape codes), and any left are stripped, so no message, report or
 * --json document carries ANSI codes.
 */
export async function runWrangler(options: RunWranglerOptions): Promise<ProcessResult> {
	const onOutput = options.onOutput;
	const result = await runProcess({
		file: process.execPath,
		args: [resolveWranglerBin(options.projectRoot), ...options.args],
		cwd: options.cwd,
		env: {
			CI: "true",
			WRANGLER_SEND_METRICS: "false",
			WRANGLER_HIDE_BANNER: "true",
			...options.env,
			NO_COLOR: "1",
			FORCE_COLOR: "0",
		},
		timeoutMs: options.timeoutMs,
		signal: options.signal,
		onOutput: onOutput && ((chunk) => onOutput(stripVTControlCharacters(chunk))),
	});
	return {
		...result,
		stdout: stripVTControlCharacters(result.stdout),
		stderr: stripVTControlCharacters(result.stderr),
	};
}

// What the Cloudflare Vite plugin's build leaves (wrangler's PATH_TO_DEPLOY_CONFIG).
const DEPLOY_CONFIG = path.join(".wrangler", "deploy", "config.json");

/**
 * A build (the Cloudflare Vite plugin's: React Router, Astro 6, vinext, Hono on Vite) left
 * .wrangler/deploy/config.json pointing at the config it wrote for its output; wrangler follows
 * that only without --config, for the config it finds itself (findWranglerConfig: wrangler.json,
 * then .jsonc, then .toml → findRedirectedWranglerConfig). Any other config (one a preview
 * writes, a --config of the user's) is never redirected: it is passed as it is.
 */
export const usesRedirectedConfig = (project: ProjectConfig): boolean => {
	if (!existsSync(path.join(project.root, DEPLOY_CONFIG))) return false;
	const found = WRANGLER_CONFIG_CANDIDATES.map((file) => path.join(project.root, file)).find(
		(file) => existsSync(file),
	);
	return found !== undefined && path.resolve(found) === path.resolve(project.wranglerPath);
};

/**
 * The config such a build wrote and the environment it was built for: the plugin builds one
 * environment, chosen by CLOUDFLARE_ENV when it runs, and writes it as `targetEnvironment`
 * (undefined: the top-level Worker). wrangler deploys that config whatever --env says when
 * none was chosen (config validation: only a different targetEnvironment is refused), so a
 * deploy checks it first. Undefined when there is no such build; `config` undefined when the
 * redirect names nothing readable (wrangler then refuses it with its own message).
 */
export function readRedirectedBuild(
	project: ProjectConfig,
): { config: string | undefined; environment: string | undefined } | undefined {
	if (!usesRedirectedConfig(project)) return undefined;
	const pointer = path.join(project.root, DEPLOY_CONFIG);
	try {
		const { configPath } = JSON.parse(readFileSync(pointer, "utf8")) as { configPath?: unknown };
		if (typeof configPath !== "string") return { config: undefined, environment: undefined };
		const file = path.resolve(path.dirname(pointer), configPath);
		const built = JSON.parse(readFileSync(file, "utf8")) as { targetEnvironment?: unknown };
		return {
			config: path.relative(project.root, file).replaceAll(path.sep, "/"),
			environment:
				typeof built.targetEnvironment === "string" ? built.targetEnvironment : undefined,
		};
	} catch {
		return { config: undefined, environment: undefined };
	}
}
