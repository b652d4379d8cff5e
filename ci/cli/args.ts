import { DEFAULT_REPORT_DIR } from "../constants.ts";
import { UserError } from "../errors.ts";
import { suggest } from "../suggest.ts";

export interface FlagDef {
	name: string;
	type: "boolean" | "string";
	description: string;
	/** Shown in --help, e.g. `<env>`. */
	value?: string;
	required?: boolean;
}

export type ParsedFlags = Record<string, string | boolean | undefined>;

/** Flags every command accepts. */
export const GLOBAL_FLAGS: FlagDef[] = [
	{
		name: "cwd",
		type: "string",
		value: "<dir>",
		description: "project directory (default: the current directory)",
	},
	{
		name: "config",
		type: "string",
		value: "<file>",
		description:
			"wrangler config file (default: as wrangler finds it: wrangler.json, wrangler.jsonc, wrangler.toml, here or in a parent directory)",
	},
	{
		name: "json",
		type: "boolean",
		description: "print one JSON document on stdout instead of the table",
	},
	{
		name: "report-dir",
		type: "string",
		value: "<dir>",
		description: `where report files are written (default: ${DEFAULT_REPORT_DIR})`,
	},
	{ name: "help", type: "boolean", description: "show help" },
];

/** Pure: `--flag value`, `--flag=value`, `--no-flag` for booleans; positionals are refused. */
export function parseFlags(
	argv: readonly string[],
	defs: readonly FlagDef[],
	command: string,
): ParsedFlags {
	const byName = new Map(defs.map((d) => [d.name, d]));
	const flags: ParsedFlags = {};
	for (let i = 0; i < argv.length; i++) {
		const arg = argv[i] as string;
		if (!arg.startsWith("--")) {
			throw new UserError(
				`Unexpected argument "${arg}" for \`${command}\`; options are written --name value. See \`workers-pipeline ${command} --help\`.`,
			);
		}
		let [name, inline] = splitOnce(arg.slice(2), "=");
		let negated = false;
		if (
			!byName.has(name) &&
			name.startsWith("no-") &&
			byName.get(name.slice(3))?.type === "boolean"
		) {
			name = name.slice(3);
			negated = true;
		}
		const def = byName.get(name);
		if (!def) {
			const hint = suggest(name, [...byName.keys()]);
			throw new UserError(
				`Unknown option --${name} for \`${command}\`.${hint ? ` Did you mean --${hint}?` : ""} See \`workers-pipeline ${command} --help\`.`,
			);
		}
		if (def.type === "boolean") {
			if (inline !== undefined && !["true", "false"].includes(inline)) {
				throw new UserError(
					`Option --${name} is a switch; write --${name} or --no-${name}, not --${name}=${inline}.`,
				);
			}
			flags[name] = negated ? false : inline !== "false";
			continue;
		}
		if (inline === undefined) {
			const next = argv[i + 1];
			if (next === undefined || next.startsWith("--")) {
				throw new UserError(`Option --${name} needs a value: --${name} ${def.value ?? "<value>"}.`);
			}
			inline = next;
			i++;
		}
		flags[name] = inline;
	}
	for (const def of defs) {
		if (def.required && flags[def.name] === undefined && !flags.help) {
			throw new UserError(`\`${command}\` needs --${def.name} ${def.value ?? "<value>"}.`);
		}
	}
	return flags;
}

function splitOnce(text: string, sep: string): [string, string | undefined] {
	const i = text.indexOf(sep);
	return i < 0 ? [text, undefined] : [text.slice(0, i), text.slice(i + 1)];
}

// --help rendering: pure, for a given width (main.ts passes the terminal's, default 80).

export const DEFAULT_HELP_WIDTH = 80;

/** Greedy word wrap; lines after the first are indented by `indent` spaces. Words never split. */
export function wrapText(text: string, width: number, indent = 0): string[] {
	const lines: string[] = [];
	let line = "";
	for (const word of text.split(/\s+/).filter(Boolean)) {
		const room = width - (lines.length ? indent : 0);
		if (line && line.length + 1 + word.length > room) {
			lines.push(line);
			line = word;
		} else {
			line = line ? `${line} ${word}` : word;
		}
	}
	if (line || lines.length === 0) lines.push(line);
	return lines.map((l, i) => (i > 0 && indent ? " ".repeat(indent) + l : l));
}

/** Two columns, the second wrapped under itself: `  --lock-ttl <seconds>  lease of the lock; …`. */
export function formatRows(
	rows: readonly [string, string][],
	width: number,
	labels: readonly string[] = rows.map(([l]) => l),
): string[] {
	const left = Math.min(Math.max(0, ...labels.map((l) => l.length)) + 4, Math.floor(width / 2));
	const out: string[] = [];
	for (const [label, text] of rows) {
		const head = `  ${label}`;
		if (head.length + 2 > left) {
			// A label wider than the column gets its own line; the text goes under the column.
			out.push(head);
			out.push(...wrapText(text, width - left, 0).map((l) => " ".repeat(left) + l));
			continue;
		}
		const [first = "", ...rest] = wrapText(text, width - left, 0);
		out.push(head.padEnd(left) + first, ...rest.map((l) => " ".repeat(left) + l));
	}
	return out;
}

/** The label of a flag in --help: `--env <env>`. */
export const flagLabel = (flag: FlagDef): string =>
	`--${flag.name}${flag.type === "string" ? ` ${flag.value ?? "<value>"}` : ""}`;

/** `--through <NNNN>` for each required flag, for the usage line. */
export const requiredUsage = (flags: readonly FlagDef[]): string =>
	flags
		.filter((f) => f.required)
		.map((f) => ` ${flagLabel(f)}`)
		.join("");

/** Flag rows; `alignWith` sizes the label column (e.g. a command's flags and the global ones). */
export function formatFlagRows(
	flags: readonly FlagDef[],
	width: number,
	alignWith: readonly FlagDef[] = flags,
): string[] {
	return formatRows(
		flags.map((f) => [flagLabel(f), f.required ? `${f.description} (required)` : f.description]),
		width,
		alignWith.map(flagLabel),
	);
}
