import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { DEFAULT_REPORT_DIR } from "../constants.ts";
import { CiError } from "../errors.ts";
import {
	type ErrorCode,
	EXIT_FAILED,
	EXIT_INTERRUPTED,
	EXIT_OK,
	EXIT_USAGE,
	exitCodeFor,
	type FindingCode,
} from "../report/codes.ts";
import { renderJson } from "../report/json.ts";
import { renderMarkdown } from "../report/markdown.ts";
import type { RunReport } from "../report/run-report.ts";
import { renderText } from "../report/text.ts";
import type { StepContext } from "../steps/_step.ts";
import { suggest } from "../suggest.ts";
import {
	DEFAULT_HELP_WIDTH,
	formatFlagRows,
	formatRows,
	GLOBAL_FLAGS,
	parseFlags,
	requiredUsage,
	wrapText,
} from "./args.ts";
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

export { EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE };

// ci/cli/main.ts in a checkout, dist/ci/cli/main.js in the package: the first package.json up.
const VERSION = (() => {
	for (const up of ["../../package.json", "../../../package.json"]) {
		try {
			const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), "utf8")) as {
				name?: string;
				version: string;
			};
			if (pkg.name === "workers-pipeline") return pkg.version;
		} catch {}
	}
	return "unknown";
})();

export function renderHelp(command?: CommandDef, width = DEFAULT_HELP_WIDTH): string {
	if (!command) {
		return [
			...wrapText(
				`workers-pipeline ${VERSION}: pipeline-as-code for Cloudflare Workers apps on D1`,
				width,
			),
			"",
			"Usage: workers-pipeline <command> [options]",
			"",
			"Commands:",
			...formatRows(
				COMMANDS.map((c) => [c.name, c.summary]),
				width,
			),
			"",
			"Global options:",
			...formatFlagRows(GLOBAL_FLAGS, width),
			"",
			...wrapText(
				"Exit codes: 0 ok, 1 failed checks, 2 bad usage or configuration, 130 interrupted.",
				width,
			),
			...wrapText(
				"Run `workers-pipeline <command> --help` (or `workers-pipeline help <command>`) for a command's options.",
				width,
			),
			"",
		].join("\n");
	}
	return [
		`Usage: workers-pipeline ${command.name}${requiredUsage(command.flags)} [options]`,
		"",
		...wrapText(command.summary, width),
		"",
		// One column for both lists, so the descriptions line up.
		...(command.flags.length
			? [
					"Options:",
					...formatFlagRows(command.flags, width, [...command.flags, ...GLOBAL_FLAGS]),
					"",
				]
			: []),
		"Global options:",
		...formatFlagRows(GLOBAL_FLAGS, width, [...command.flags, ...GLOBAL_FLAGS]),
		"",
		"Examples:",
		...command.examples.map((e) => `  ${e}`),
		"",
	].join("\n");
}

/** The terminal's width for --help (COLUMNS), within reason; 80 when unknown. */
export function helpWidth(env: CliIo["env"]): number {
	const columns = Number(env.COLUMNS);
	return Number.isFinite(columns) && columns > 0
		? Math.min(Math.max(columns, 60), 120)
		: DEFAULT_HELP_WIDTH;
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

/** No command, `help [<command>]`, `--help`, `--version`: the exit code, or undefined for a command. */
async function runGeneral(
	[name, ...rest]: readonly string[],
	io: CliIo,
	rawIo: CliIo,
): Promise<number | undefined> {
	// `help <command>`, as git and npm read it: that command's --help.
	if (name === "help" && rest[0] !== undefined && !rest[0].startsWith("-"))
		return runCli([rest[0], "--help"], rawIo);
	if (name === undefined || name === "--help" || name === "-h" || name === "help") {
		io.stdout(renderHelp(undefined, helpWidth(io.env)));
		return name === undefined ? EXIT_USAGE : EXIT_OK;
	}
	if (name === "--version" || name === "-v") {
		io.stdout(`${VERSION}\n`);
		return EXIT_OK;
	}
	return undefined;
}

/** Runs one CLI invocation and returns its exit code; never throws, never exits the process. */
export async function runCli(argv: readonly string[], rawIo: CliIo): Promise<number> {
	const redact = makeRedactor(rawIo.env);
	const io: CliIo = {
		...rawIo,
		stdout: (t) => rawIo.stdout(redact(t)),
		stderr: (t) => rawIo.stderr(redact(t)),
	};
	const general = await runGeneral(argv, io, rawIo);
	if (general !== undefined) return general;
	const [name = "", ...rest] = argv;
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
	let parsed: Record<string, unknown> | undefined;
	try {
		const flags = parseFlags(rest, [...command.flags, ...GLOBAL_FLAGS], command.name);
		parsed = flags;
		if (flags.help) {
			io.stdout(renderHelp(command, helpWidth(io.env)));
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
			writeReports(report, path.resolve(root, reportDir ?? DEFAULT_REPORT_DIR), io.env);
		}
		io.stdout(
			json ? renderJson(report) : renderText(report, { color: io.isTTY && !io.env.NO_COLOR }),
		);
		// Ctrl-C / SIGTERM: a step that stopped cleanly on the signal says so; exit 130.
		if (
			io.signal?.aborted ||
			steps.some((s) => (s.data as { interrupted?: boolean } | undefined)?.interrupted === true)
		)
			return exitCodeFor("E_INTERRUPTED");
		return report.ok ? EXIT_OK : EXIT_FAILED;
	} catch (error) {
		const { code, message } = describeFailure(error, { aborted: io.signal?.aborted, env: io.env });
		const at = (root: string) => errorLocation(error, root);
		// Remote commands leave their report on every path, errors included: it is what CI keeps.
		if (command.alwaysReport && parsed) {
			const root = path.resolve(io.cwd, (parsed.cwd as string | undefined) ?? ".");
			const durationMs = Math.round(performance.now() - started);
			// The report's finding: INTERRUPTED as a migrate step reports it, else the error code.
			const where = at(root);
			const finding = {
				code: (code === "E_INTERRUPTED" ? "INTERRUPTED" : code) as FindingCode,
				severity: "error" as const,
				message,
				...(where.file === null ? {} : { file: where.file }),
				...(where.line === null ? {} : { line: where.line }),
				...(where.column === null ? {} : { column: where.column }),
			};
			const summary = `stopped by an error: ${message.split("\n")[0]}`;
			try {
				writeReports(
					{
						command: command.name,
						ok: false,
						durationMs,
						steps: [{ name: command.name, ok: false, durationMs, summary, findings: [finding] }],
					},
					path.resolve(root, (parsed["report-dir"] as string | undefined) ?? DEFAULT_REPORT_DIR),
					io.env,
				);
			} catch {
				// An unwritable report dir must not hide the error itself.
			}
		}
		if (json) {
			// Same keys as a report (report/json.ts), so consumers can read .findings on any failure.
			const totalMs = Math.round(performance.now() - started);
			const where = at(path.resolve(io.cwd, (parsed?.cwd as string | undefined) ?? "."));
			const finding = { step: command.name, code, severity: "error", ...where };
			const document = {
				ok: false,
				command: command.name,
				error: { code, message },
				findings: [{ ...finding, message }],
				migrations: [],
				steps: [],
				timings: { totalMs, steps: {} },
			};
			io.stdout(`${JSON.stringify(document, null, 2)}\n`);
		}
		io.stderr(`workers-pipeline ${command.name}: ${message}\n`);
		return exitCodeFor(code);
	} finally {
		for (const stop of stoppers) stop();
	}
}

/** Where a thrown error points (a config file's line and column), relative to `root` when inside it. */
function errorLocation(
	error: unknown,
	root: string,
): { file: string | null; line: number | null; column: number | null } {
	const location = error instanceof CiError ? error.location : undefined;
	if (location === undefined) return { file: null, line: null, column: null };
	const rel = path.relative(root, location.file).replaceAll(path.sep, "/");
	return {
		file: rel.startsWith("..") || path.isAbsolute(rel) ? location.file : rel,
		line: location.line ?? null,
		column: location.column ?? null,
	};
}

/** A thrown error as the CLI reports it: a registered code, and a message that says what to do. */
export function describeFailure(
	error: unknown,
	{ aborted, env }: { aborted?: boolean; env: CliIo["env"] },
): { code: ErrorCode; message: string } {
	const text = (error as Error)?.message ?? String(error);
	if (aborted) return { code: "E_INTERRUPTED", message: `interrupted: ${text}` };
	// Every CiError carries its own clear message (bad token, unknown database, 5xx…).
	if (error instanceof CiError && error.code !== "E_INTERNAL") {
		return { code: error.code, message: error.message };
	}
	const stack = env.WORKERS_PIPELINE_DEBUG ? `\n${(error as Error)?.stack}` : "";
	return {
		code: "E_INTERNAL",
		message: `internal error: ${text}\nThis is a bug in workers-pipeline; please report it with the command you ran.${stack}`,
	};
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
