import { spawnSync } from "node:child_process";
import {
	appendFileSync,
	cpSync,
	existsSync,
	mkdtempSync,
	readFileSync,
	rmSync,
	writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FIXTURES, packRepo, type Run, run } from "./_fixture.ts";

// A Worker on Yarn Plug'n'Play, the linker Yarn 2+ uses unless told otherwise: no node_modules
// at all, every package in a zip that Node reads only through .pnp.cjs. The packed
// workers-pipeline is added with Yarn itself and run as `yarn workers-pipeline`, as its team would.
const YARN = ["npx", "--yes", "@yarnpkg/cli-dist@4.18.1"];
const registry =
	spawnSync("npm", ["config", "get", "registry"], { encoding: "utf8" }).stdout.trim() ||
	"https://registry.npmjs.org";

interface JsonReport {
	ok: boolean;
	steps: { name: string; ok: boolean; summary: string; data?: Record<string, unknown> }[];
	findings: { step: string; code: string; file?: string; acknowledged?: string }[];
}

const report = (result: Run): JsonReport => {
	try {
		return JSON.parse(result.stdout) as JsonReport;
	} catch {
		throw new Error(`not a JSON report (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
	}
};

let dir: string;
const yarn = (...args: string[]) =>
	run([...YARN, ...args], dir, { YARN_ENABLE_TELEMETRY: "0", YARN_ENABLE_PROGRESS_BARS: "0" });
const git = (...args: string[]) =>
	run(["git", "-c", "user.name=fixture", "-c", "user.email=fixture@example.com", ...args], dir);
const must = (result: Run, what: string) => {
	if (result.code !== 0)
		throw new Error(`${what}: exit ${result.code}\n${result.stdout}\n${result.stderr}`);
	return result;
};

beforeAll(() => {
	dir = mkdtempSync(path.join(tmpdir(), "wp-yarn-pnp-"));
	cpSync(path.join(FIXTURES, "hono-toml"), dir, { recursive: true });
	rmSync(path.join(dir, "package-lock.json"));
	writeFileSync(
		path.join(dir, ".yarnrc.yml"),
		`nodeLinker: pnp\nnpmRegistryServer: "${registry.replace(/\/$/, "")}"\n`,
	);
	must(yarn("add", "-D", `workers-pipeline@file:${packRepo()}`), "yarn add");
	must(git("init", "-q", "-b", "main"), "git init");
	must(git("add", "-A"), "git add");
	must(git("commit", "-qm", "the app before workers-pipeline"), "git commit");
}, 600_000);

afterAll(() => {
	if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("a Yarn PnP app (no node_modules)", () => {
	it("is installed by Yarn without node_modules, every package behind .pnp.cjs", () => {
		expect(existsSync(path.join(dir, ".pnp.cjs"))).toBe(true);
		expect(existsSync(path.join(dir, "node_modules"))).toBe(false);
	});

	it("init writes the health route: the installed package's export is found through PnP", () => {
		const result = yarn("workers-pipeline", "init", "--json");
		expect(result.code, result.stderr).toBe(0);
		expect(readFileSync(path.join(dir, "src/index.ts"), "utf8")).toContain(
			'from "workers-pipeline/health/hono"',
		);
		expect(result.stdout).not.toMatch(/has no "health\/hono" export/);
		must(git("add", "-A"), "git add");
		must(git("commit", "-qm", "workers-pipeline init"), "git commit");
	}, 120_000);

	it("ci is green on the first run, with the typecheck run by the app's own tsc", () => {
		const result = yarn("workers-pipeline", "ci", "--json");
		const ci = report(result);
		expect(
			ci.findings.filter((f) => !f.acknowledged),
			result.stderr,
		).toEqual([]);
		expect(result.code).toBe(0);
		const lint = ci.steps.find((s) => s.name === "lint");
		expect(lint?.data?.tools).toContainEqual({ kind: "typecheck", source: "tsc" });
		expect(ci.steps.find((s) => s.name === "migration-test")?.ok).toBe(true);
	}, 300_000);

	it("a type error fails lint at its file and line: tsc really ran from the zip", () => {
		const file = path.join(dir, "src/index.ts");
		const before = readFileSync(file, "utf8");
		try {
			appendFileSync(file, '\nexport const broken: number = "not a number";\n');
			const result = yarn("workers-pipeline", "lint", "--json");
			expect(result.code, result.stderr).toBe(1);
			expect(report(result).findings).toContainEqual(
				expect.objectContaining({ code: "TS2322", file: "src/index.ts" }),
			);
		} finally {
			writeFileSync(file, before);
		}
	}, 120_000);
});
