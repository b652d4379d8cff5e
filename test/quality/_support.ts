// Helpers for the quality suites: fixture copies, the CLI in-process, and Debian's Chromium.
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runCli } from "../../ci/cli/main.ts";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const FIXTURES = path.join(REPO, "test", "quality", "fixtures");

/** A throwaway copy of a fixture with the repository's node_modules linked in. */
export function copyFixture(name: string): { dir: string; dispose: () => void } {
	const dir = mkdtempSync(path.join(tmpdir(), `wp-quality-${name}-`));
	cpSync(path.join(FIXTURES, name), dir, { recursive: true });
	symlinkSync(path.join(REPO, "node_modules"), path.join(dir, "node_modules"));
	return { dir, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface CliRun {
	code: number;
	stdout: string;
	stderr: string;
	json: () => {
		ok: boolean;
		steps: {
			name: string;
			ok: boolean;
			skipped?: boolean;
			summary: string;
			data?: Record<string, unknown>;
		}[];
		findings: { code: string; severity: string; file: string | null; message: string }[];
	};
}

export async function cli(
	argv: readonly string[],
	env: Record<string, string | undefined> = {},
): Promise<CliRun> {
	let stdout = "";
	let stderr = "";
	const fullEnv: Record<string, string | undefined> = { ...process.env, ...env };
	for (const name of ["CI", "GITHUB_STEP_SUMMARY"]) if (!(name in env)) delete fullEnv[name];
	const code = await runCli(argv, {
		stdout: (t) => {
			stdout += t;
		},
		stderr: (t) => {
			stderr += t;
		},
		env: fullEnv,
		cwd: REPO,
		isTTY: false,
	});
	return { code, stdout, stderr, json: () => JSON.parse(stdout) };
}

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"];

/**
 * Debian's Chromium, installed with apt-get when missing and running as root (CI is root). Suites
 * run in parallel: flock makes one install at a time, and the others find it installed.
 */
export function ensureChromium(): string {
	const found = () => CHROMIUM.find((f) => existsSync(f));
	const have = found();
	if (have) return have;
	if (process.getuid?.() !== 0) {
		throw new Error("No Chromium: run `sudo apt-get update && sudo apt-get install -y chromium`.");
	}
	const script =
		"test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq -o DPkg::Lock::Timeout=600 chromium; }";
	execFileSync(
		"flock",
		[path.join(tmpdir(), "workers-pipeline-chromium.lock"), "sh", "-c", script],
		{
			stdio: "inherit",
			timeout: 20 * 60_000,
			env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
		},
	);
	const installed = found();
	if (!installed) throw new Error("apt-get install chromium left no /usr/bin/chromium");
	return installed;
}

/** True when something accepts connections on the port (a server left running). */
export async function answers(url: string): Promise<boolean> {
	try {
		await fetch(url, { signal: AbortSignal.timeout(2000) });
		return true;
	} catch {
		return false;
	}
}
