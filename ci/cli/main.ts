import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { CiError, D1ApiError, isUserError, type UserError } from "../errors.ts";
import { renderJson } from "../report/json.ts";
import { renderMarkdown } from "../report/markdown.ts";
import type { RunReport } from "../report/run-report.ts";
import { renderText } from "../report/text.ts";
import type { StepContext } from "../steps/_step.ts";
import { GLOBAL_FLAGS, parseFlags, suggest } from "./args.ts";
import { COMMANDS, type CommandDef, findCommand } from "./commands.ts";

export interface CliIo {
	stdout: (text: string) => void;
	stderr: (text: string) => void;
	env: Readonly<Record<string, string | undefined>>;
	cwd: string;
	/** Colour and live progress only on a terminal. */
	isTTY: boolean;
	signal?: AbortSignal;
}

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
/** Stopped by Ctrl-C / SIGTERM (128 + SIGINT), after the step cleaned up and wrote its report. */
export const EXIT_INTERRUPTED = 130;

const VERSION = (() => {
	try {
		const pkg = new URL("../../package.json", import.meta.url);
		return (JSON.parse(readFileSync(pkg, "utf8")) as { version: string }).version;
	} catch {
		return "unknown";
	}
})();

export function renderHelp(command?: CommandDef): string {
	const flagLines = (defs: CommandDef["flags"]) =>
		defs.map((f) => `  --${f.name}${f.value ? ` ${f.value}` : ""}`.padEnd(30) + f.description);
	if (!command) {
		return [
			`workers-pipeline ${VERSION}: pipeline-as-code for Cloudflare Workers apps on D1`,
			"",
			"Usage: workers-pipeline <command> [options]",
			"",
			"Commands:",
			...COMMANDS.map((c) => `  ${c.name.padEnd(16)}${c.summary}`),
			"",
			"Global options:",
			...flagLines(GLOBAL_FLAGS),
			"",
			"Exit codes: 0 ok, 1 failed checks, 2 bad usage or configuration.",
			"Run `workers-pipeline <command> --help` for a command's options.",
			"",
		].join("\n");
	}
	return [
		`Usage: workers-pipeline ${command.name} [options]`,
		"",
		command.summary,
		"",
		...(command.flags.length ? ["Options:", ...flagLines(command.flags), ""] : []),
		"Global options:",
		...flagLines(GLOBAL_FLAGS),
		"",
		"Examples:",
		...command.examples.map((e) => `  ${e}`),
		"",
	].join("\n");
}

// Live progress: a step's messages appear once it has run for more than a second, then at most
// one line a second, on stderr so --json output stays one document.
function makeProgress(io: CliIo, step: string, startedAt: number) {
	let last = 0;
	let pending: string | undefined;
	const print = (message: string) => {
		last = performance.now();
		const elapsed = ((last - startedAt) / 1000).toFixed(0);
		io.stderr(`  … ${step} (${elapsed}s): ${message}\n`);
	};
	const timer = setTimeout(() => pending && print(pending), 1000);
	timer.unref();
	return {
		progress(message: string) {
			const now = performance.now();
			if (now - startedAt < 1000 || now - last < 1000) {
				pending = message;
				return;
			}
			pending = undefined;
			print(message);
		},
		stop() {
			clearTimeout(timer);
		},
	};
}

function writeReports(report: RunReport, dir: string, env: CliIo["env"]): string[] {
	const redact = makeRedactor(env);
	mkdirSync(dir, { recursive: true });
	const json = path.join(dir, `${report.command}.json`);
	const md = path.join(dir, `${report.command}.md`);
	writeFileSync(json, redact(renderJson(report)));
	const markdown = redact(renderMarkdown(report));
	writeFileSync(md, markdown);
	if (env.GITHUB_STEP_SUMMARY) appendFileSync(env.GITHUB_STEP_SUMMARY, markdown);
	return [json, md];
}

/** Replaces every secret value with *** (the API token must never be printed or written). */
export function makeRedactor(env: CliIo["env"]): (text: string) => string {
	const secrets = [env.CLOUDFLARE_API_TOKEN].filter(
		(s): s is string => typeof s === "string" && s.length >= 4,
	);
	if (secrets.length === 0) return (text) => text;
	return (text) => secrets.reduce((out, secret) => out.split(secret).join("***"), text);
}

/** Runs one CLI invocation and returns its exit code; never throws, never exits the process. */
export async function runCli(argv: readonly string[], rawIo: CliIo): Promise<number> {
	const redact = makeRedactor(rawIo.env);
	const io: CliIo = {
		...rawIo,
		stdout: (t) => rawIo.stdout(redact(t)),
		stderr: (t) => rawIo.stderr(redact(t)),
	};
	const [name, ...rest] = argv;
	if (name === undefined || name === "--help" || name === "-h" || name === "help") {
		io.stdout(renderHelp());
		return name === undefined ? EXIT_USAGE : EXIT_OK;
	}
	if (name === "--version" || name === "-v") {
		io.stdout(`${VERSION}\n`);
		return EXIT_OK;
	}
	const command = findCommand(name);
	if (!command) {
		const hint = suggest(
			name,
			COMMANDS.map((c) => c.name),
		);
		io.stderr(
			`workers-pipeline: unknown command "${name}".${hint ? ` Did you mean \`${hint}\`?` : ""} Run \`workers-pipeline --help\` for the list.\n`,
		);
		return EXIT_USAGE;
	}
	const json = rest.includes("--json");
	const started = performance.now();
	const stoppers: (() => void)[] = [];
	try {
		const flags = parseFlags(rest, [...command.flags, ...GLOBAL_FLAGS], command.name);
		if (flags.help) {
			io.stdout(renderHelp(command));
			return EXIT_OK;
		}
		const context = (step: string): StepContext => {
			const p = makeProgress(io, step, performance.now());
			stoppers.push(p.stop);
			return { cwd: io.cwd, env: io.env, progress: p.progress, signal: io.signal };
		};
		const steps = await command.run({ flags, cwd: io.cwd, context });
		const report: RunReport = {
			command: command.name,
			ok: steps.every((s) => s.ok),
			durationMs: performance.now() - started,
			steps,
		};
		const reportDir = flags["report-dir"] as string | undefined;
		if (reportDir || command.alwaysReport || io.env.CI || io.env.GITHUB_STEP_SUMMARY) {
			const root = path.resolve(io.cwd, (flags.cwd as string | undefined) ?? ".");
			writeReports(report, path.resolve(root, reportDir ?? ".reports"), io.env);
		}
		io.stdout(
			json ? renderJson(report) : renderText(report, { color: io.isTTY && !io.env.NO_COLOR }),
		);
		if (io.signal?.aborted) return EXIT_INTERRUPTED;
		return report.ok ? EXIT_OK : EXIT_FAILED;
	} catch (error) {
		const usage = isUserError(error);
		// A D1 API or wrangler failure (bad token, unknown database, 5xx…) carries its own clear
		// message: a failed run (exit 1), not a bug in workers-pipeline.
		const known = usage || (error instanceof CiError && error.code !== "E_INTERNAL");
		const message = known
			? (error as UserError).message
			: `internal error: ${(error as Error)?.message ?? String(error)}\nThis is a bug in workers-pipeline; please report it with the command you ran.${io.env.WORKERS_PIPELINE_DEBUG ? `\n${(error as Error)?.stack}` : ""}`;
		const code = known ? (error as CiError).code : "E_INTERNAL";
		if (json) {
			// Same keys as a report (report/json.ts), so consumers can read .findings on any failure.
			const totalMs = Math.round(performance.now() - started);
			const finding = { step: command.name, code, severity: "error", file: null, line: null };
			const document = {
				ok: false,
				command: command.name,
				error: { code, message },
				findings: [{ ...finding, column: null, message }],
				migrations: [],
				steps: [],
				timings: { totalMs, steps: {} },
			};
			io.stdout(`${JSON.stringify(document, null, 2)}\n`);
		}
		io.stderr(`workers-pipeline ${command.name}: ${message}\n`);
		// Credentials the API refuses and a database id it does not know are configuration, too.
		const config = error instanceof D1ApiError && [401, 403, 404].includes(error.status ?? 0);
		return usage || config ? EXIT_USAGE : EXIT_FAILED;
	} finally {
		for (const stop of stoppers) stop();
	}
}

/** The process edge: argv, env, TTY, exit code, Ctrl-C. */
export async function runMain(): Promise<void> {
	const controller = new AbortController();
	process.once("SIGINT", () => controller.abort());
	process.once("SIGTERM", () => controller.abort());
	const code = await runCli(process.argv.slice(2), {
		stdout: (t) => process.stdout.write(t),
		stderr: (t) => process.stderr.write(t),
		env: process.env,
		cwd: process.cwd(),
		isTTY: Boolean(process.stdout.isTTY),
		signal: controller.signal,
	});
	process.exitCode = code;
}
