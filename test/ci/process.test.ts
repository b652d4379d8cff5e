import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { localBin, runProcess, runTool } from "../../ci/process.ts";

const NODE = process.execPath;
const dirs: string[] = [];
afterEach(() => {
	for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
const tempDir = () => {
	const dir = mkdtempSync(path.join(tmpdir(), "wp-process-"));
	dirs.push(dir);
	return dir;
};
const node = (script: string, more: Partial<Parameters<typeof runProcess>[0]> = {}) =>
	runProcess({ file: NODE, args: ["-e", script], cwd: process.cwd(), ...more });
const alive = (pid: number) => {
	try {
		process.kill(pid, 0);
		return true;
	} catch {
		return false;
	}
};

describe("runProcess()", () => {
	it.each([
		["exit 0", "process.stdout.write('out'); process.stderr.write('err')", 0, false, "out", "err"],
		["exit 3", "console.log('partial'); process.exit(3)", 3, true, "partial\n", ""],
		["an uncaught throw", "throw new Error('boom')", 1, true, "", "boom"],
	])("%s: one shape, failed or not", async (_, script, exitCode, failed, stdout, stderr) => {
		const result = await node(script);
		expect(result).toMatchObject({ exitCode, failed, timedOut: false, signal: null, stdout });
		expect(result.stderr).toContain(stderr);
		expect(result.command).toBe(`${NODE} -e ${script}`);
		expect(result.durationMs).toBeGreaterThanOrEqual(0);
	});

	it("never throws for a file that does not exist", async () => {
		const result = await runProcess({ file: "./no-such-tool", args: [], cwd: tempDir() });
		expect(result).toMatchObject({ exitCode: null, failed: true, timedOut: false });
		expect(result.stderr).toContain("ENOENT");
	});

	it("runs in cwd with exactly the env given", async () => {
		const cwd = tempDir();
		const result = await node("console.log(process.cwd(), process.env.WP_X, process.env.HOME)", {
			cwd,
			env: { WP_X: "x1" },
		});
		expect(result.stdout.trim()).toBe(`${cwd} x1 undefined`);
	});

	it("streams stdout and stderr to onOutput as they arrive", async () => {
		const chunks: string[] = [];
		const result = await node("console.log('a'); console.error('b')", {
			onOutput: (c) => chunks.push(c),
		});
		expect(chunks.join("").split("\n").sort()).toEqual(["", "a", "b"]);
		expect(result.stdout + result.stderr).toHaveLength(chunks.join("").length);
	});

	// The child starts a grandchild and prints its pid; the timeout must stop both (process group).
	const SPAWNS_GRANDCHILD = `
		const { spawn } = require("node:child_process");
		const g = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
		console.log(g.pid);
		setInterval(() => {}, 1000);`;

	it("kills the whole process group on timeout", async () => {
		const result = await node(SPAWNS_GRANDCHILD, { timeoutMs: 1500 });
		expect(result).toMatchObject({
			timedOut: true,
			failed: true,
			signal: "SIGKILL",
			exitCode: null,
		});
		const grandchild = Number(result.stdout.trim());
		expect(grandchild).toBeGreaterThan(0);
		await expect.poll(() => alive(grandchild), { timeout: 5000 }).toBe(false);
	});

	it("kills the whole process group on abort, without calling it a timeout", async () => {
		const controller = new AbortController();
		const pending = node(SPAWNS_GRANDCHILD, {
			signal: controller.signal,
			onOutput: () => controller.abort(),
		});
		const result = await pending;
		expect(result).toMatchObject({ timedOut: false, failed: true, signal: "SIGKILL" });
		const grandchild = Number(result.stdout.trim());
		await expect.poll(() => alive(grandchild), { timeout: 5000 }).toBe(false);
	});
});

describe("localBin()", () => {
	it.each([
		["biome", true],
		["tsc", false],
	])("%s present: %s", (name, present) => {
		const root = tempDir();
		mkdirSync(path.join(root, "node_modules/.bin"), { recursive: true });
		writeFileSync(path.join(root, "node_modules/.bin/biome"), "");
		expect(localBin(root, name)).toBe(
			present ? path.join(root, "node_modules/.bin", name) : undefined,
		);
	});
});

describe("localBin() in a workspace", () => {
	it("should find a tool the workspace hoisted to its root, and never climb out of a workspace", () => {
		const top = tempDir();
		writeFileSync(path.join(top, "package.json"), '{"workspaces":["apps/*"]}');
		mkdirSync(path.join(top, "node_modules/.bin"), { recursive: true });
		writeFileSync(path.join(top, "node_modules/.bin/tsc"), "");
		const app = path.join(top, "apps/api");
		mkdirSync(path.join(app, "node_modules/.bin"), { recursive: true });
		writeFileSync(path.join(app, "node_modules/.bin/biome"), "");
		// The app's own first, then the workspace root's.
		expect(localBin(app, "biome")).toBe(path.join(app, "node_modules/.bin/biome"));
		expect(localBin(app, "tsc")).toBe(path.join(top, "node_modules/.bin/tsc"));
		// Not a workspace: only the project's own bin, whatever the directories above hold.
		writeFileSync(path.join(top, "package.json"), "{}");
		expect(localBin(app, "tsc")).toBeUndefined();
	});
});

describe("runTool()", () => {
	it("puts the project's bin, then this Node, first on PATH, and turns colour off", async () => {
		const root = tempDir();
		const bin = path.join(root, "node_modules/.bin");
		mkdirSync(bin, { recursive: true });
		const tool = path.join(bin, "show-env");
		// A `#!/usr/bin/env node` tool finds this Node even when PATH holds no node at all.
		writeFileSync(
			tool,
			"#!/usr/bin/env node\nconsole.log(JSON.stringify([process.env.PATH, process.env.NO_COLOR, process.env.FORCE_COLOR, process.execPath, process.cwd()]))\n",
		);
		chmodSync(tool, 0o755);
		const result = await runTool({
			file: tool,
			args: [],
			cwd: root,
			env: { PATH: "/nonexistent", FORCE_COLOR: "3" },
		});
		expect(result.failed, result.stderr).toBe(false);
		const [pathVar, noColor, forceColor, execPath, cwd] = JSON.parse(result.stdout);
		expect(pathVar.split(path.delimiter)).toEqual([bin, path.dirname(NODE), "/nonexistent"]);
		expect([noColor, forceColor, execPath, cwd]).toEqual(["1", "0", NODE, root]);
	});

	it("keeps colour codes out of the output it returns, from a tool that colours anyway", async () => {
		const root = tempDir();
		const tool = path.join(root, "loud");
		// Colour, bold, a cursor move and an OSC 8 hyperlink, as `astro check` prints them.
		writeFileSync(
			tool,
			"#!/usr/bin/env node\nprocess.stdout.write('\\x1b[31merror\\x1b[39m \\x1b[1msrc/a.ts\\x1b[22m:3\\n');\nprocess.stderr.write('\\x1b[2K\\x1b]8;;https://x.test\\x07link\\x1b]8;;\\x07 done\\n');\n",
		);
		chmodSync(tool, 0o755);
		const result = await runTool({ file: tool, args: [], cwd: root, env: { PATH: "" } });
		expect(result.stdout).toBe("error src/a.ts:3\n");
		expect(result.stderr).toBe("link done\n");
	});
});
