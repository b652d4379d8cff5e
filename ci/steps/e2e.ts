import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { stripVTControlCharacters } from "node:util";
import { isPagesProject } from "../config/load.ts";
import type { ProjectConfig } from "../config/schema.ts";
import { localBin, runTool, toolCommand } from "../process.ts";
import type { Finding, StepResult } from "../report/model.ts";
import { defineStep, makeStepResult, type StepContext } from "./_step.ts";
import { appEnv, startLocalApp } from "./serve.ts";

export const PLAYWRIGHT_CONFIGS = [
	"playwright.config.ts",
	"playwright.config.mts",
	"playwright.config.js",
	"playwright.config.mjs",
	"playwright.config.cjs",
] as const;
/** Where a Chromium from the OS packages lives (Debian: chromium; others: chromium-browser). */
export const CHROMIUM_NAMES = ["chromium", "chromium-browser", "google-chrome-stable"] as const;

export interface E2eArgs {
	project: ProjectConfig;
	/** Run only the tests, against this URL (a preview deployment, a Dagger service). */
	baseUrl?: string;
	/** Where the HTML report, the JSON results and the traces are kept. */
	reportDir: string;
}

export const findPlaywrightConfig = (root: string): string | undefined =>
	PLAYWRIGHT_CONFIGS.find((f) => existsSync(path.join(root, f)));

/** The Chromium to hand Playwright: e2e.browser, $WORKERS_PIPELINE_CHROMIUM, then PATH. */
export function findChromium(
	project: ProjectConfig,
	env: Readonly<Record<string, string | undefined>>,
): string | undefined {
	const explicit = project.settings.e2e.browser ?? env.WORKERS_PIPELINE_CHROMIUM;
	if (explicit) return existsSync(explicit) ? explicit : undefined;
	for (const dir of (env.PATH ?? "").split(path.delimiter).filter(Boolean)) {
		for (const name of CHROMIUM_NAMES) {
			const file = path.join(dir, name);
			if (existsSync(file)) return file;
		}
	}
	return undefined;
}

/** What to add to a project without a Playwright config (shown when e2e is skipped). */
export const PLAYWRIGHT_SETUP_HINT = [
	"no playwright.config.ts: e2e skipped. To add end-to-end tests:",
	"  npm install -D @playwright/test   (no browser download: the pipeline uses the OS's Chromium)",
	"  playwright.config.ts:",
	'    import { defineConfig } from "@playwright/test";',
	"    export default defineConfig({",
	'      testDir: "e2e",',
	"      use: {",
	"        // baseURL comes from PLAYWRIGHT_TEST_BASE_URL, set by `workers-pipeline e2e`",
	"        launchOptions: { executablePath: process.env.WORKERS_PIPELINE_CHROMIUM },",
	"      },",
	"    });",
	"  then e2e/*.spec.ts; on Debian/Ubuntu install the browser with `apt-get install -y chromium`.",
].join("\n");

export interface PlaywrightCounts {
	passed: number;
	failed: number;
	flaky: number;
	skipped: number;
	failures: { title: string; file?: string; line?: number; message: string }[];
	/** The directory spec files are relative to (the config's testDir). */
	rootDir?: string;
}

interface JsonSpec {
	title: string;
	file?: string;
	line?: number;
	tests?: {
		status?: string;
		results?: { status?: string; error?: { message?: string } }[];
	}[];
}
interface JsonSuite {
	title?: string;
	specs?: JsonSpec[];
	suites?: JsonSuite[];
}

/** Pure: counts and failures from Playwright's JSON reporter. */
export function parsePlaywrightJson(text: string): PlaywrightCounts {
	const report = JSON.parse(text) as {
		suites?: JsonSuite[];
		stats?: { expected?: number; unexpected?: number; flaky?: number; skipped?: number };
		errors?: { message?: string }[];
		config?: { rootDir?: string };
	};
	const failures: PlaywrightCounts["failures"] = [];
	const walk = (suite: JsonSuite, prefix: string[]) => {
		const titles = suite.title ? [...prefix, suite.title] : prefix;
		for (const spec of suite.specs ?? []) {
			for (const test of spec.tests ?? []) {
				if (test.status !== "unexpected") continue;
				const error = test.results?.find((r) => r.error)?.error?.message ?? "failed";
				failures.push({
					title: [...titles.slice(1), spec.title].join(" › "),
					file: spec.file,
					line: spec.line,
					message: stripVTControlCharacters(error).split("\n").slice(0, 12).join("\n"),
				});
			}
		}
		for (const child of suite.suites ?? []) walk(child, titles);
	};
	for (const suite of report.suites ?? []) walk(suite, []);
	for (const error of report.errors ?? []) {
		failures.push({
			title: "(outside a test)",
			message: stripVTControlCharacters(error.message ?? "error"),
		});
	}
	return {
		passed: report.stats?.expected ?? 0,
		failed: report.stats?.unexpected ?? 0,
		flaky: report.stats?.flaky ?? 0,
		skipped: report.stats?.skipped ?? 0,
		failures,
		rootDir: report.config?.rootDir,
	};
}

const tail = (text: string, lines = 40) => text.trimEnd().split("\n").slice(-lines).join("\n");

interface PlaywrightOutcome {
	ok: boolean;
	summary: string;
	findings: Finding[];
	data: Record<string, unknown>;
}

/** `playwright test` with the base URL, Debian's Chromium, and the artifacts in the report dir. */
export async function runPlaywright(
	ctx: StepContext,
	{
		project,
		baseUrl,
		reportDir,
		chromium,
		config,
	}: E2eArgs & { baseUrl: string; chromium: string; config: string },
): Promise<PlaywrightOutcome> {
	const outDir = path.join(reportDir, "e2e");
	rmSync(outDir, { recursive: true, force: true });
	mkdirSync(outDir, { recursive: true });
	const jsonFile = path.join(outDir, "results.json");
	const bin = localBin(project.root, "playwright") as string;
	ctx.progress(`playwright test against ${baseUrl}`);
	const result = await runTool({
		file: bin,
		args: [
			"test",
			"--config",
			config,
			"--reporter",
			"list,html,json",
			"--output",
			path.join(outDir, "test-results"),
			"--trace",
			"retain-on-failure",
		],
		cwd: project.root,
		env: {
			...appEnv(ctx, project.root),
			PLAYWRIGHT_TEST_BASE_URL: baseUrl,
			BASE_URL: baseUrl,
			WORKERS_PIPELINE_CHROMIUM: chromium,
			PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: "1",
			PLAYWRIGHT_HTML_OUTPUT_DIR: path.join(outDir, "html"),
			PLAYWRIGHT_HTML_OPEN: "never",
			PLAYWRIGHT_JSON_OUTPUT_FILE: jsonFile,
			CI: "true",
		},
		signal: ctx.signal,
		timeoutMs: 60 * 60_000,
	});
	let counts: PlaywrightCounts | undefined;
	try {
		counts = parsePlaywrightJson(readFileSync(jsonFile, "utf8"));
	} catch {
		counts = undefined;
	}
	const traces = existsSync(path.join(outDir, "test-results"))
		? readdirSync(path.join(outDir, "test-results"), { recursive: true }).filter((f) =>
				String(f).endsWith("trace.zip"),
			).length
		: 0;
	const artifacts = {
		html: path.join(outDir, "html", "index.html"),
		json: jsonFile,
		traces: path.join(outDir, "test-results"),
	};
	if (!counts) {
		return {
			ok: false,
			summary: `playwright test failed (exit ${result.exitCode ?? result.signal}) before reporting`,
			findings: [
				{
					code: "E2E_FAILED",
					severity: "error",
					message: `playwright test exited ${result.exitCode ?? result.signal} without a report:\n${tail(result.stdout + result.stderr)}`,
				},
			],
			data: { baseUrl, artifacts },
		};
	}
	const specDir = counts.rootDir ?? project.root;
	const findings: Finding[] = counts.failures.map((f) => ({
		code: "E2E_TEST_FAILED",
		severity: "error",
		file: f.file && path.relative(project.root, path.resolve(specDir, f.file)),
		line: f.line,
		message: `${f.title}: ${f.message}`,
	}));
	if (result.failed && findings.length === 0) {
		findings.push({
			code: "E2E_FAILED",
			severity: "error",
			message: `playwright test exited ${result.exitCode ?? result.signal}:\n${tail(result.stdout + result.stderr)}`,
		});
	}
	const total = counts.passed + counts.failed + counts.flaky;
	if (total === 0 && !result.failed) {
		findings.push({
			code: "E2E_NO_TESTS",
			severity: "error",
			message: `playwright found no tests (config ${config}); add *.spec.ts files under its testDir.`,
		});
	}
	const summary = `${counts.passed} passed, ${counts.failed} failed${counts.flaky ? `, ${counts.flaky} flaky` : ""}${counts.skipped ? `, ${counts.skipped} skipped` : ""} against ${baseUrl}; report ${path.relative(project.root, artifacts.html)}${traces ? `, ${traces} trace(s)` : ""}`;
	return {
		ok: findings.length === 0,
		summary,
		findings,
		data: { baseUrl, ...counts, traces, artifacts },
	};
}

/** The version the app's playwright reports (its own, its workspace's hoisted one, or PnP's). */
function playwrightVersion(root: string): string | undefined {
	const bin = localBin(root, "playwright");
	if (bin === undefined) return undefined;
	const command = toolCommand(root, bin, ["--version"], process.env);
	try {
		const out = execFileSync(command.file, command.args, {
			cwd: root,
			env: command.env as NodeJS.ProcessEnv,
			stdio: ["ignore", "pipe", "ignore"],
		});
		return out.toString().trim();
	} catch {
		return undefined;
	}
}

/** `e2e`: the app built once, served locally with a migrated + seeded D1, Playwright against it. */
export const e2eStep = defineStep<E2eArgs>({
	name: "e2e",
	async run(ctx, { project, baseUrl, reportDir }) {
		const started = performance.now();
		const done = (fields: Omit<StepResult, "name" | "durationMs">) =>
			makeStepResult("e2e", started, fields);
		const config = findPlaywrightConfig(project.root);
		if (config && !baseUrl && isPagesProject(project)) {
			return done({
				ok: true,
				skipped: true,
				summary: "skipped: a Pages project (e2e serves a Worker with wrangler dev)",
				findings: [
					{
						code: "E2E_PAGES_PROJECT",
						severity: "warning",
						file: config,
						message: `${path.basename(project.wranglerPath)} is a Cloudflare Pages project (pages_build_output_dir), which wrangler dev refuses to serve (it says to run \`wrangler pages dev\`): e2e was skipped. Run the tests against \`wrangler pages dev\` with \`workers-pipeline e2e --base-url <its URL>\`, or move the project to Workers with static assets.`,
					},
				],
			});
		}
		if (!config) {
			return done({
				ok: true,
				skipped: true,
				summary: "skipped: no playwright.config.ts (the warning says what to add)",
				findings: [
					{ code: "E2E_NOT_CONFIGURED", severity: "warning", message: PLAYWRIGHT_SETUP_HINT },
				],
			});
		}
		if (!localBin(project.root, "playwright") || !playwrightVersion(project.root)) {
			return done({
				ok: false,
				summary: "@playwright/test is not installed",
				findings: [
					{
						code: "E2E_PLAYWRIGHT_MISSING",
						severity: "error",
						file: config,
						message: `${config} exists but node_modules/.bin/playwright does not run: \`npm install -D @playwright/test\` (never \`playwright install\`: the pipeline uses the OS's Chromium).`,
					},
				],
			});
		}
		const chromium = findChromium(project, ctx.env);
		if (!chromium) {
			return done({
				ok: false,
				summary: "no Chromium to run the tests in",
				findings: [
					{
						code: "E2E_NO_BROWSER",
						severity: "error",
						message:
							"no Chromium found (e2e.browser, $WORKERS_PIPELINE_CHROMIUM, or chromium on PATH). Install the OS's package (`apt-get update && apt-get install -y chromium` on Debian/Ubuntu) or point WORKERS_PIPELINE_CHROMIUM at a Chromium or Chrome binary.",
					},
				],
			});
		}
		if (baseUrl) {
			const outcome = await runPlaywright(ctx, { project, baseUrl, reportDir, chromium, config });
			return done(outcome);
		}
		const started_ = await startLocalApp(ctx, { project, host: "127.0.0.1" });
		if (!started_.local) {
			return done({
				ok: false,
				summary: started_.failed?.summary ?? "the app did not start",
				findings: started_.failed?.findings ?? [],
				data: { build: started_.failed?.build?.summary },
			});
		}
		const { app, dispose, build, database } = started_.local;
		try {
			const outcome = await runPlaywright(ctx, {
				project,
				baseUrl: app.url,
				reportDir,
				chromium,
				config,
			});
			const seed = database.seed
				? `, seeded from ${path.relative(project.root, database.seed)}`
				: "";
			return done({
				...outcome,
				summary: `${outcome.summary} (${app.kind === "opennext" ? "opennextjs-cloudflare preview" : "wrangler dev"}, local D1 migrated${seed})`,
				data: {
					...outcome.data,
					cached: build.data?.cached === true,
					server: app.kind,
				},
			});
		} finally {
			await dispose();
		}
	},
});
