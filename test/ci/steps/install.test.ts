import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { StepContext } from "../../../ci/steps/_step.ts";
import { describeChoice, excerpt, installStep } from "../../../ci/steps/install.ts";

const temps: string[] = [];
afterAll(() => {
	for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

const ctx = (cwd: string): StepContext => ({ cwd, env: process.env, progress: () => {} });

function write(dir: string, rel: string, text: string): void {
	mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
	writeFileSync(path.join(dir, rel), text);
}

/** The lockfile npm writes for `dir`, offline (its dependencies are local). */
function lockOffline(dir: string): void {
	const locked = spawnSync(
		"npm",
		["install", "--package-lock-only", "--ignore-scripts", "--offline"],
		{ cwd: dir, encoding: "utf8" },
	);
	expect(locked.status, locked.stderr).toBe(0);
}

/** A project with no dependencies, so npm never needs the registry. */
function project(files: Record<string, string>): string {
	const dir = mkdtempSync(path.join(tmpdir(), "wp-install-"));
	temps.push(dir);
	for (const [name, text] of Object.entries(files)) write(dir, name, text);
	return dir;
}

const manifest = (extra: object = {}) =>
	JSON.stringify({ name: "app", version: "1.0.0", ...extra });
// What `npm install --package-lock-only` writes for that manifest (lockfile v3).
const lockfile = (deps: Record<string, string> = {}) =>
	JSON.stringify({
		name: "app",
		version: "1.0.0",
		lockfileVersion: 3,
		requires: true,
		packages: { "": { name: "app", version: "1.0.0", dependencies: deps } },
	});

describe("describeChoice()", () => {
	it.each([
		[
			{ name: "pnpm", version: "9.15.0", source: "packageManager", lockfile: "pnpm-lock.yaml" },
			"pnpm 9.15.0 from packageManager",
		],
		[
			{ name: "yarn", version: undefined, source: "lockfile", lockfile: "yarn.lock" },
			"yarn from yarn.lock",
		],
		[
			{
				name: "npm",
				version: undefined,
				source: "lockfile",
				lockfile: "package-lock.json",
				workspaceRoot: "/r",
			},
			"npm from package-lock.json of the workspace at /r",
		],
		[
			{ name: "npm", version: undefined, source: "default", lockfile: undefined },
			"npm, no lockfile or packageManager",
		],
	] as const)("%j: %s", (pm, text) => {
		expect(describeChoice(pm)).toBe(text);
	});
});

describe("excerpt()", () => {
	const lines = (n: number) => Array.from({ length: n }, (_, i) => `line ${i + 1}`).join("\n");
	it("keeps 40 lines or fewer whole", () => {
		expect(excerpt(`${lines(40)}\n\n`)).toBe(lines(40));
	});
	it("keeps the first 15 and the last 25 of more, saying how many it left out", () => {
		const kept = excerpt(lines(100)).split("\n");
		expect(kept).toHaveLength(41);
		expect(kept.slice(14, 17)).toEqual(["line 15", "… (60 lines)", "line 76"]);
		expect(kept.at(-1)).toBe("line 100");
	});
});

describe("installStep", () => {
	it("installs from the lockfile with npm ci and says what decided it", async () => {
		const dir = project({ "package.json": manifest(), "package-lock.json": lockfile() });
		const result = await installStep.run(ctx(dir), { root: dir });
		expect(result).toMatchObject({
			ok: true,
			findings: [],
			data: {
				packageManager: "npm",
				source: "lockfile",
				lockfile: "package-lock.json",
				command: ["npm", "ci"],
			},
		});
		expect(result.summary).toBe("npm ci: ok (npm from package-lock.json)");
	});

	it("fails with INSTALL_FAILED, npm's own words, when package.json and the lockfile disagree", async () => {
		const dir = project({
			"package.json": manifest({ dependencies: { "left-pad": "1.3.0" } }),
			"package-lock.json": lockfile(),
		});
		const result = await installStep.run(ctx(dir), { root: dir });
		expect(result.ok).toBe(false);
		expect(result.findings).toHaveLength(1);
		expect(result.findings[0]).toMatchObject({ code: "INSTALL_FAILED", severity: "error" });
		expect(result.findings[0]?.message).toMatch(
			/^npm ci exited with 1 in .*package\.json and package-lock\.json disagree/s,
		);
		expect(result.findings[0]?.message).toMatch(/in sync/);
	});

	it("refuses a directory without package.json as a usage error", async () => {
		const dir = project({});
		await expect(installStep.run(ctx(dir), { root: dir })).rejects.toMatchObject({
			code: "E_CONFIG_MISSING",
		});
	});

	it("exits 1 from the CLI on a failed install, 2 without package.json", () => {
		const bin = path.resolve(import.meta.dirname, "../../../bin/workers-pipeline.js");
		const run = (cwd: string) =>
			spawnSync(process.execPath, [bin, "install", "--cwd", cwd, "--json"], { encoding: "utf8" });
		const bad = project({
			"package.json": manifest({ dependencies: { "left-pad": "1.3.0" } }),
			"package-lock.json": lockfile(),
		});
		const failed = run(bad);
		expect(failed.status).toBe(1);
		expect(JSON.parse(failed.stdout).findings[0].code).toBe("INSTALL_FAILED");
		expect(run(project({})).status).toBe(2);
	});
});

// A project whose own postinstall needs its sources (prisma generate reads prisma/schema.prisma)
// and a dependency (a packed tarball, installed offline) whose install script must still run.
function projectWithScripts(): string {
	const dir = project({});
	const dep = path.join(dir, "dep-src");
	const mark = (name: string) =>
		`node -e "require('fs').appendFileSync(process.env.INIT_CWD + '/ran.txt', '${name}\\n')"`;
	write(
		dep,
		"package.json",
		JSON.stringify({ name: "dep", version: "1.0.0", scripts: { postinstall: mark("dep") } }),
	);
	const packed = spawnSync("npm", ["pack", "--silent", "--pack-destination", dir], {
		cwd: dep,
		encoding: "utf8",
	});
	expect(packed.status, packed.stderr).toBe(0);
	const needsSource = `node -e "require('fs').readFileSync('prisma/schema.prisma')" && ${mark("postinstall")}`;
	write(
		dir,
		"package.json",
		// Tabs and key order as a team writes them: the file must come back byte for byte.
		`{\n\t"name": "app",\n\t"version": "1.0.0",\n\t"scripts": {\n\t\t"prepare": ${JSON.stringify(mark("prepare"))},\n\t\t"postinstall": ${JSON.stringify(needsSource)},\n\t\t"test": "true"\n\t},\n\t"dependencies": { "dep": "file:dep-1.0.0.tgz" }\n}\n`,
	);
	lockOffline(dir);
	return dir;
}

const ran = (dir: string) =>
	existsSync(path.join(dir, "ran.txt"))
		? readFileSync(path.join(dir, "ran.txt"), "utf8").trim().split("\n")
		: [];

describe("installStep --scripts", () => {
	it("fails by default when the project's postinstall needs sources the install cannot see", async () => {
		const dir = projectWithScripts();
		const result = await installStep.run(ctx(dir), { root: dir });
		expect(result.ok).toBe(false);
		expect(result.findings[0]?.code).toBe("INSTALL_FAILED");
		// Names the project's script and the way out, not a lockfile that disagrees.
		expect(result.findings[0]?.message).toMatch(
			/^npm ci exited with 1 in .*: the project's postinstall script \(node -e .*schema\.prisma.*\) failed\. .*--scripts deps, then --scripts project/s,
		);
		expect(result.findings[0]?.message).not.toMatch(/disagree/);
	});

	it("deps: runs the dependencies' install scripts, holds back the project's, restores package.json byte for byte", async () => {
		const dir = projectWithScripts();
		const before = readFileSync(path.join(dir, "package.json"), "utf8");
		const result = await installStep.run(ctx(dir), { root: dir, scripts: "deps" });
		expect(result.ok, JSON.stringify(result.findings)).toBe(true);
		expect(ran(dir)).toEqual(["dep"]);
		expect(existsSync(path.join(dir, "node_modules/dep/package.json"))).toBe(true);
		expect(readFileSync(path.join(dir, "package.json"), "utf8")).toBe(before);
	});

	it("project: then runs the held-back scripts in npm's order, once the sources are in", async () => {
		const dir = projectWithScripts();
		await installStep.run(ctx(dir), { root: dir, scripts: "deps" });
		write(dir, "prisma/schema.prisma", "// schema\n");
		const result = await installStep.run(ctx(dir), { root: dir, scripts: "project" });
		expect(result.ok, JSON.stringify(result.findings)).toBe(true);
		expect(ran(dir)).toEqual(["dep", "postinstall", "prepare"]);
		expect(result.summary).toBe("the project's postinstall, prepare script(s): ok");
	});

	it("project: a failing script is INSTALL_FAILED naming the script and its command", async () => {
		const dir = projectWithScripts();
		const result = await installStep.run(ctx(dir), { root: dir, scripts: "project" });
		expect(result.ok).toBe(false);
		expect(result.findings[0]?.code).toBe("INSTALL_FAILED");
		expect(result.findings[0]?.message).toMatch(
			/^the project's postinstall script \(node -e .*schema\.prisma/,
		);
		expect(ran(dir)).toEqual([]);
	});

	it("holds back and then runs a workspace member's postinstall too (a monorepo's packages/db)", async () => {
		const db = `{ "name": "db", "version": "1.0.0", "scripts": { "postinstall": "node -e \\"require('fs').copyFileSync('schema.prisma', 'client.txt')\\"" } }\n`;
		const dir = project({
			"package.json": JSON.stringify({
				name: "mono",
				private: true,
				workspaces: ["apps/*", "packages/*"],
			}),
			"packages/db/package.json": db,
			"apps/api/package.json": JSON.stringify({
				name: "api",
				version: "1.0.0",
				dependencies: { db: "1.0.0" },
			}),
		});
		lockOffline(dir);
		const api = path.join(dir, "apps/api");
		const held = await installStep.run(ctx(api), { root: api, scripts: "deps" });
		expect(held.ok, JSON.stringify(held.findings)).toBe(true);
		expect(readFileSync(path.join(dir, "packages/db/package.json"), "utf8")).toBe(db);
		write(dir, "packages/db/schema.prisma", "model User {}\n");
		const ran = await installStep.run(ctx(api), { root: api, scripts: "project" });
		expect(ran.ok, JSON.stringify(ran.findings)).toBe(true);
		expect(readFileSync(path.join(dir, "packages/db/client.txt"), "utf8")).toBe("model User {}\n");
	});

	it("puts every manifest back and says which failed when one cannot be read", async () => {
		// Read first (members in path order), rewritten, then put back when the next one fails.
		const a = '{ "name": "a", "scripts": { "postinstall": "exit 1" } }\n';
		const dir = project({
			"package.json": JSON.stringify({ name: "mono", private: true, workspaces: ["packages/*"] }),
			"packages/a/package.json": a,
			"packages/b/package.json": "{ not json",
		});
		await expect(installStep.run(ctx(dir), { root: dir, scripts: "deps" })).rejects.toMatchObject({
			code: "E_CONFIG_INVALID",
		});
		expect(readFileSync(path.join(dir, "packages/a/package.json"), "utf8")).toBe(a);
	});

	it("refuses an unknown --scripts value from the CLI with exit 2", () => {
		const bin = path.resolve(import.meta.dirname, "../../../bin/workers-pipeline.js");
		const dir = project({ "package.json": manifest(), "package-lock.json": lockfile() });
		const run = spawnSync(process.execPath, [bin, "install", "--cwd", dir, "--scripts", "none"], {
			encoding: "utf8",
		});
		expect(run.status).toBe(2);
		expect(run.stderr).toContain("--scripts takes all, deps, project");
	});
});
