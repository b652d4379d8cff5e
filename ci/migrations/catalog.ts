import { hash } from "node:crypto";
import { type Dirent, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { patternWithinDir } from "../config/paths.ts";
import {
	type Acknowledgement,
	type D1Database,
	NAMING_PRESETS,
	type NamingPreset,
	type NamingRule,
} from "../config/schema.ts";
import { RETIRED_SUFFIX } from "../constants.ts";
import { UserError } from "../errors.ts";
import { FINDING_CODES, isFindingCode } from "../report/codes.ts";
import type { Finding } from "../report/model.ts";
import { suggest } from "../suggest.ts";

/** A file as read from disk; `bytes` is undefined when it could not be read. */
export interface CatalogFile {
	/** Relative to the migrations dir with `/` separators: wrangler's migration name. */
	name: string;
	bytes: Buffer | undefined;
	readError?: string;
}

export interface CatalogInput {
	/** Migrations dir relative to the project root, for messages. */
	dir: string;
	pattern: string;
	files: CatalogFile[];
	retired: string[];
}

export interface Dependency {
	name: string;
	line: number;
}

export interface Migration {
	name: string;
	/** Relative to the project root: what findings point at. */
	path: string;
	/** wrangler's leading number (`parseInt` of the text before the first `_`), if any. */
	number: number | undefined;
	/** sha256 of the content with a leading BOM removed and line endings normalised to LF. */
	checksum: string;
	/**
	 * What replay and apply execute: BOM removed, LF line endings but inside quoted values and
	 * identifiers, whose CR LF D1 keeps as wrangler sends them (executableMigrationText).
	 */
	sql: string;
	/** False when the file could not be read or is not UTF-8; replay stops there. */
	readable: boolean;
	/** The file starts with a UTF-8 byte order mark (removed from `sql`); wrangler keeps it. */
	bom?: boolean;
	depends: Dependency[];
}

export interface Catalog {
	dir: string;
	pattern: string;
	migrations: Migration[];
	retired: string[];
	findings: Finding[];
}

// Where drizzle-kit, Prisma and hand-rolled setups keep migrations, relative to the project.
const USUAL_DIRS = [
	"migrations",
	"drizzle",
	"drizzle/migrations",
	"prisma/migrations",
	"db/migrations",
	"src/db/migrations",
];

/** A usual migrations dir holding .sql files (flat or `<name>/migration.sql`), if any. */
function findUsualMigrationsDir(root: string): string | undefined {
	return USUAL_DIRS.find((dir) => {
		try {
			return readdirSync(path.join(root, dir), { withFileTypes: true }).some(
				(e) =>
					(e.isFile() && e.name.endsWith(".sql")) ||
					(e.isDirectory() && existsSync(path.join(root, dir, e.name, "migration.sql"))),
			);
		} catch {
			return false;
		}
	});
}

/** Lists the migration files wrangler would select (its `migrations_pattern`) and reads them. */
export function readCatalog({
	root,
	database,
}: {
	root: string;
	database: D1Database;
}): CatalogInput {
	const absDir = path.resolve(root, database.migrationsDir);
	let stat: ReturnType<typeof statSync>;
	try {
		stat = statSync(absDir);
	} catch {
		const elsewhere = findUsualMigrationsDir(root);
		const hint = elsewhere
			? ` ${elsewhere} holds .sql files: if that is this binding's history, set "migrations_dir" to it (relative to the wrangler config).`
			: " Create it, or set migrations_dir for this binding in the wrangler config.";
		throw new UserError(
			`Migrations directory ${database.migrationsDir} not found in ${root} (D1 binding "${database.binding}").${hint}`,
			"E_MIGRATIONS_DIR",
		);
	}
	if (!stat.isDirectory()) {
		throw new UserError(
			`${database.migrationsDir} is not a directory (migrations_dir of D1 binding "${database.binding}").`,
			"E_MIGRATIONS_DIR",
		);
	}
	const relativePattern = patternWithinDir(database);
	const files: CatalogFile[] = [];
	const retired: string[] = [];
	const selects = globMatcher(relativePattern);
	for (const name of listFilesRelative(absDir)) {
		if (selects(name)) {
			files.push(readCatalogFile(absDir, name));
		} else if (name.endsWith(RETIRED_SUFFIX)) {
			retired.push(name);
		}
	}
	return { dir: database.migrationsDir, pattern: database.migrationsPattern, files, retired };
}

// wrangler's default `*.sql` without path.matchesGlob, whose glob engine costs every start-up a
// few ms: `*` never crosses `/`, and the dot files it would not match are never listed.
const globMatcher = (pattern: string) =>
	pattern === "*.sql"
		? (name: string) => name.endsWith(".sql") && !name.includes("/")
		: (name: string) => path.posix.matchesGlob(name, pattern);

function readCatalogFile(absDir: string, name: string): CatalogFile {
	try {
		return { name, bytes: readFileSync(path.join(absDir, ...name.split("/"))) };
	} catch (error) {
		return {
			name,
			bytes: undefined,
			readError: (error as NodeJS.ErrnoException).code ?? String(error),
		};
	}
}

function listFilesRelative(dir: string, rel = ""): string[] {
	let entries: Dirent[];
	try {
		entries = readdirSync(path.join(dir, rel), { withFileTypes: true });
	} catch {
		return [];
	}
	const out: string[] = [];
	for (const entry of entries) {
		if (entry.name.startsWith(".")) continue;
		const child = rel === "" ? entry.name : `${rel}/${entry.name}`;
		if (entry.isDirectory()) out.push(...listFilesRelative(dir, child));
		else if (entry.isFile()) out.push(child);
	}
	return out;
}

/** The checksum DESIGN.md fixes: a Windows checkout or a BOM must not change it. */
export function normalizeMigrationText(text: string): string {
	return text.replace(/^\uFEFF/, "").replace(/\r\n?/g, "\n");
}

/**
 * The text D1 executes: BOM removed, line endings between tokens and in comments as LF, and a
 * CR LF inside a quoted value or identifier kept, as wrangler sends it (d1/splitter.ts
 * normalizeSqlLineEndings for the remote API; `--local` sends the file's text). A file with no CR
 * is returned as it is.
 */
export function executableMigrationText(text: string): string {
	const sql = text.replace(/^\uFEFF/, "");
	if (!sql.includes("\r")) return sql;
	let out = "";
	let i = 0;
	while (i < sql.length) {
		const c = sql[i] as string;
		const close = c === "'" || c === '"' || c === "`" ? c : c === "[" ? "]" : undefined;
		if (close !== undefined) {
			// To the closing quote; a doubled quote is part of the value (not for [brackets]).
			let end = i + 1;
			for (;;) {
				end = sql.indexOf(close, end);
				if (end === -1) {
					end = sql.length;
					break;
				}
				if (close !== "]" && sql[end + 1] === close) end += 2;
				else {
					end += 1;
					break;
				}
			}
			out += sql.slice(i, end);
			i = end;
		} else if (c === "\r") {
			out += "\n";
			i += sql[i + 1] === "\n" ? 2 : 1;
		} else if (c === "-" && sql[i + 1] === "-") {
			// A line comment: no quote inside it opens a value.
			const end = sql.indexOf("\n", i);
			const stop = end === -1 ? sql.length : end;
			out += sql.slice(i, stop).replace(/\r$/, "").replace(/\r/g, "\n");
			i = stop;
		} else if (c === "/" && sql[i + 1] === "*") {
			const end = sql.indexOf("*/", i + 2);
			const stop = end === -1 ? sql.length : end + 2;
			out += sql.slice(i, stop).replace(/\r\n?/g, "\n");
			i = stop;
		} else {
			out += c;
			i += 1;
		}
	}
	return out;
}

export function checksumOf(text: string): string {
	return hash("sha256", normalizeMigrationText(text), "hex");
}

/** Leading number as wrangler computes it, so our order equals `wrangler d1 migrations apply`'s. */
export function leadingNumber(segment: string): number | undefined {
	const n = Number.parseInt(segment.split("_")[0] ?? "", 10);
	return Number.isFinite(n) ? n : undefined;
}

function compareSegments(a: string, b: string): number {
	const an = leadingNumber(a);
	const bn = leadingNumber(b);
	if (an !== bn) {
		if (an !== undefined && bn !== undefined) return an - bn;
		if (an !== undefined) return -1;
		if (bn !== undefined) return 1;
	}
	return a < b ? -1 : a > b ? 1 : 0;
}

/** wrangler's order: numeric prefix per path segment, then plain string order. */
export function compareMigrationNames(a: string, b: string): number {
	const as = a.split("/");
	const bs = b.split("/");
	for (let i = 0; i < Math.min(as.length, bs.length); i++) {
		const cmp = compareSegments(as[i] as string, bs[i] as string);
		if (cmp !== 0) return cmp;
	}
	return as.length - bs.length;
}

const DEPENDS_LINE = /^[ \t]*--[ \t]*DEPENDS:(.*)$/i;

export function parseDepends(sql: string): Dependency[] {
	const out: Dependency[] = [];
	// Most files have no DEPENDS line: one search instead of a regex per line.
	if (!/DEPENDS:/i.test(sql)) return out;
	for (const [index, line] of sql.split("\n").entries()) {
		const match = DEPENDS_LINE.exec(line);
		if (!match) continue;
		for (const name of (match[1] ?? "").split(/[\s,]+/).filter(Boolean)) {
			out.push({ name, line: index + 1 });
		}
	}
	return out;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

function decode(bytes: Buffer): { text: string; invalidAt?: number } {
	try {
		return { text: decoder.decode(bytes) };
	} catch {
		// Find the first bad byte by decoding growing prefixes only once it is known to be bad.
		let lo = 0;
		let hi = bytes.length;
		while (lo < hi) {
			const mid = (lo + hi) >> 1;
			try {
				new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, mid + 1), {
					stream: true,
				});
				lo = mid + 1;
			} catch {
				hi = mid;
			}
		}
		// A streaming decode accepts a truncated sequence until the next byte: point at its lead byte.
		try {
			decoder.decode(bytes.subarray(0, lo));
		} catch {
			while (lo > 0 && ((bytes[lo - 1] as number) & 0xc0) === 0x80) lo--;
			lo = Math.max(0, lo - 1);
		}
		return { text: bytes.toString("utf8"), invalidAt: lo };
	}
}

export interface ParseCatalogOptions {
	/** The project's rule for migration names (`migrations.naming`); default strict NNNN_snake_case. */
	naming?: NamingRule;
}

/** Orders, hashes and checks the files; pure. */
/** One file as a migration; an unreadable or non-UTF-8 file adds its finding to `findings`. */
function readMigrationFile(file: CatalogFile, dir: string, findings: Finding[]): Migration {
	const filePath = `${dir === "." ? "" : `${dir}/`}${file.name}`;
	if (!file.bytes) {
		findings.push({
			code: "CATALOG_UNREADABLE",
			severity: "error",
			file: filePath,
			message: `cannot read the file (${file.readError ?? "unknown error"}); check its permissions.`,
		});
		return makeMigration(file.name, filePath, "", false);
	}
	const { text, invalidAt } = decode(file.bytes);
	if (invalidAt !== undefined) {
		const line = file.bytes.subarray(0, invalidAt).toString("latin1").split("\n").length;
		findings.push({
			code: "CATALOG_INVALID_UTF8",
			severity: "error",
			file: filePath,
			line,
			message: `byte ${invalidAt} is not valid UTF-8; save the file as UTF-8 (D1 and wrangler read migrations as UTF-8).`,
		});
	}
	return makeMigration(file.name, filePath, text, invalidAt === undefined);
}

export function parseCatalog(
	input: CatalogInput,
	{ naming = NAMING_PRESETS.strict }: ParseCatalogOptions = {},
): Catalog {
	const namePattern = new RegExp(naming.pattern);
	const findings: Finding[] = [];
	const sorted = [...input.files].sort((a, b) => compareMigrationNames(a.name, b.name));
	const migrations = sorted.map((file) => readMigrationFile(file, input.dir, findings));

	const seenNumbers = new Map<number, Migration>();
	let previous: Migration | undefined;
	const layout = suggestNaming(
		migrations.map((m) => m.name),
		namePattern,
	);
	for (const migration of migrations) {
		if (!namePattern.test(migration.name)) {
			findings.push({
				code: "CATALOG_BAD_NAME",
				severity: "error",
				file: migration.path,
				message: `"${migration.name}" does not follow ${naming.description}; rename it before it is applied anywhere, or acknowledge it in workers-pipeline.jsonc if it is already applied (or set migrations.naming to your tool's layout${layout}).`,
			});
		}
		if (migration.number !== undefined) {
			const first = seenNumbers.get(migration.number);
			if (first) {
				findings.push({
					code: "CATALOG_DUPLICATE_NUMBER",
					severity: "error",
					file: migration.path,
					message: duplicateNumberMessage(migration.number, first.name),
				});
			} else {
				seenNumbers.set(migration.number, migration);
			}
			if (
				previous?.number !== undefined &&
				migration.number < 10_000 &&
				migration.number - previous.number > 1
			) {
				findings.push({
					code: "CATALOG_NUMBER_GAP",
					severity: "warning",
					file: migration.path,
					message: `numbering jumps from ${previous.number} (${previous.name}) to ${migration.number}; check that no migration is missing from this branch.`,
				});
			}
			previous = migration;
		}
		if (migration.readable && hasNoStatement(migration.sql)) {
			findings.push({
				code: "CATALOG_EMPTY_FILE",
				severity: "warning",
				file: migration.path,
				message:
					migration.sql.trim() === ""
						? "the migration is empty; remove it or add its statements."
						: "the migration has no statements, only comments (as `wrangler d1 migrations create` writes a new one); remove it or add its statements.",
			});
		}
	}

	const position = new Map(migrations.map((m, i) => [m.name, i]));
	const retiredNames = new Set(input.retired.map((r) => r.slice(0, -".retired".length)));
	for (const [index, migration] of migrations.entries()) {
		for (const dep of migration.depends) {
			const target = position.get(dep.name);
			if (target === undefined) {
				const retired = retiredNames.has(dep.name);
				findings.push({
					code: "CATALOG_DEPENDS_MISSING",
					severity: "error",
					file: migration.path,
					line: dep.line,
					message: retired
						? `DEPENDS names ${dep.name}, which is retired and never applied; depend on the migration that replaced it.`
						: `DEPENDS names ${dep.name}, which is not a migration in ${input.dir}; use the exact file name of an earlier migration.`,
				});
			} else if (target >= index) {
				findings.push({
					code: "CATALOG_DEPENDS_ORDER",
					severity: "error",
					file: migration.path,
					line: dep.line,
					message: `DEPENDS names ${dep.name}, which ${target === index ? "is this migration" : "runs after this one"}; a migration can only depend on earlier ones: renumber one of them.`,
				});
			}
		}
	}
	return {
		dir: input.dir,
		pattern: input.pattern,
		migrations,
		retired: [...input.retired].sort(compareMigrationNames),
		findings,
	};
}

function makeMigration(name: string, filePath: string, text: string, readable: boolean): Migration {
	const normalized = normalizeMigrationText(text);
	// What D1 executes keeps a quoted value's CR LF; the checksum does not see line endings.
	const sql = text.includes("\r") ? executableMigrationText(text) : normalized;
	return {
		name,
		path: filePath,
		number: leadingNumber(name.split("/")[0] as string),
		// One-shot (Node >= 21.7): the same hex digest without a Hash object per file.
		checksum: hash("sha256", normalized, "hex"),
		sql,
		readable,
		...(text.startsWith("\uFEFF") ? { bom: true } : {}),
		depends: readable ? parseDepends(sql) : [],
	};
}

const duplicateNumberMessage = (n: number, first: string) =>
	`number ${n} is also used by ${first}. wrangler applies the two in name order (${first} first), but a database that applied one before the other existed (two branches merged) gets them in another order, after later migrations. Give this migration the next free number before it is applied anywhere, or acknowledge it if both are already applied.`;

/** The order init tries presets in: the strictest that fits every existing name wins. */
const DETECT_ORDER = ["strict", "drizzle-kit-v1", "timestamp", "wrangler"] as const;

/**
 * The naming preset an existing history follows: the strictest under which every name fits, else
 * the one most names fit (the rest are acknowledged); `strict` for an empty history. Pure.
 */
export function detectNaming(
	names: readonly string[],
	{
		drizzleJournal = false,
		prismaLock = false,
	}: { drizzleJournal?: boolean; prismaLock?: boolean } = {},
): NamingPreset {
	if (names.length === 0) return "strict";
	const fits = (preset: NamingPreset) =>
		names.filter((n) => new RegExp(NAMING_PRESETS[preset].pattern).test(n)).length;
	let best: NamingPreset = "strict";
	for (const preset of DETECT_ORDER) {
		if (fits(preset) === names.length) {
			best = preset;
			break;
		}
		if (fits(preset) > fits(best)) best = preset;
	}
	// drizzle-kit's `--name` and Prisma's layout are recognised by their tools' files.
	if (
		drizzleJournal &&
		(best === "strict" || best === "wrangler") &&
		fits("drizzle-kit") === names.length
	)
		return "drizzle-kit";
	if (best === "drizzle-kit-v1" && prismaLock) return "prisma";
	return best;
}

// Comments, `;` and space only. A real statement starts with a word before any string or comment
// opens, so that word survives the cut even when a literal holds `--` or `/*`.
const COMMENTS = /--[^\n]*|\/\*[\s\S]*?(?:\*\/|$)/g;
const hasNoStatement = (sql: string): boolean =>
	sql.replace(COMMENTS, "").replace(/[\s;]/g, "") === "";

/** `: every name here fits "timestamp"` when some names break the rule and one preset fits all. */
function suggestNaming(names: readonly string[], rule: RegExp): string {
	if (names.every((name) => rule.test(name))) return "";
	const preset = detectNaming(names);
	const fits = new RegExp(NAMING_PRESETS[preset].pattern);
	return names.every((name) => fits.test(name)) && NAMING_PRESETS[preset].pattern !== rule.source
		? `: every name here fits "${preset}"${preset === "drizzle-kit-v1" ? ' (or "prisma", the same layout)' : ""}`
		: "";
}

export interface AcknowledgeOptions {
	/** Migrations dirs (relative to the project) that file globs may be relative to. */
	dirs: readonly string[];
	configFile: string;
	/**
	 * Which unmatched acknowledgements this caller reports as unused: the ones whose codes it
	 * checks. Default: all.
	 */
	reportsUnused?: (ack: Acknowledgement) => boolean;
}

/** A finding code or glob (`D1_*`, `*`) against a code; codes hold no `/`, so a path glob does. */
// A code with no glob character that no finding has: a typo, most likely.
const unknownCode = (code: string) => !/[*?[\]{}]/.test(code) && !isFindingCode(code);
const didYouMean = (code: string) => {
	const close = suggest(code, Object.keys(FINDING_CODES));
	return close ? ` (did you mean ${close}?)` : "";
};

export const codeMatches = (glob: string, code: string): boolean =>
	glob === code || (/[*?]/.test(glob) && path.posix.matchesGlob(code, glob));

/** A file glob given relative to a migrations dir or to the project, against a finding's file. */
export function fileMatches(
	glob: string,
	file: string | undefined,
	dirs: readonly string[],
): boolean {
	if (file === undefined) return glob === "*" || glob === "**";
	const candidates = [glob, ...dirs.filter((d) => d !== ".").map((d) => `${d}/${glob}`)];
	return candidates.some((g) => g === file || path.posix.matchesGlob(file, g));
}

/**
 * Marks the findings the project acknowledged (code glob + file glob) with the reason, and
 * reports each acknowledged file glob that matches nothing, so the list cannot silently rot.
 * Every acknowledgement a finding matches counts as used, not only the first.
 */
export function acknowledgeFindings(
	findings: readonly Finding[],
	acknowledgements: readonly Acknowledgement[],
	{ dirs, configFile, reportsUnused = () => true }: AcknowledgeOptions,
): { findings: Finding[]; unused: Finding[] } {
	const used = new Set<string>();
	const marked = findings.map((finding) => {
		let reason: string | undefined;
		for (const [i, ack] of acknowledgements.entries()) {
			if (!codeMatches(ack.code, finding.code)) continue;
			const files = ack.files ?? ["**"];
			for (const [j, glob] of files.entries()) {
				if (ack.files === undefined || fileMatches(glob, finding.file, dirs)) {
					used.add(`${i}:${j}`);
					reason ??= ack.reason;
				}
			}
		}
		return reason === undefined ? finding : { ...finding, acknowledged: reason };
	});
	const unused: Finding[] = [];
	for (const [i, ack] of acknowledgements.entries()) {
		if (!reportsUnused(ack)) continue;
		for (const [j, file] of (ack.files ?? ["(every file)"]).entries()) {
			if (used.has(`${i}:${j}`)) continue;
			unused.push({
				code: "CONFIG_UNUSED_ACKNOWLEDGEMENT",
				severity: "warning",
				file: configFile,
				message: unknownCode(ack.code)
					? `acknowledgement of ${ack.code} for ${file}: ${ack.code} is no finding code${didYouMean(ack.code)}, so it acknowledges nothing; fix the code (docs/troubleshooting.md lists them) or remove it.`
					: `acknowledgement of ${ack.code} for ${file} matches no finding; remove it from migrations.acknowledge.`,
			});
		}
	}
	return { findings: marked, unused };
}

/** acknowledgeFindings with the unused acknowledgements appended, for one migrations dir. */
export function applyAcknowledgements(
	findings: readonly Finding[],
	acknowledgements: readonly Acknowledgement[],
	{ dir, configFile }: { dir: string; configFile: string },
): Finding[] {
	const result = acknowledgeFindings(findings, acknowledgements, { dirs: [dir], configFile });
	return [...result.findings, ...result.unused];
}
