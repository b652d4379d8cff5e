// Next.js config for the example app. Three values are inlined at build time, so the health
// endpoint can say which build is serving and which schema that build expects:
// - WORKERS_PIPELINE_VERSION: env WORKERS_PIPELINE_VERSION, else GITHUB_SHA, else
//   `git rev-parse HEAD`, else "dev".
// - WORKERS_PIPELINE_EXPECTED_MIGRATION: env WORKERS_PIPELINE_EXPECTED_MIGRATION when set,
//   else the newest `NNNN_*.sql` in the DB binding's migrations_dir ("" when there is none).
// - WORKERS_PIPELINE_MIGRATIONS_TABLE: the DB binding's migrations_table (default
//   d1_migrations), the ledger that the health endpoint reads.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { initOpenNextCloudflareForDev } from "@opennextjs/cloudflare";
import { type ParseError, parse, printParseErrorCode } from "jsonc-parser";
import type { NextConfig } from "next";

// Next and OpenNext run with the app directory as the working directory.
const root = process.cwd();
const DB_BINDING = "DB";
const MIGRATION_FILE = /^(\d+)_[^/\\]+\.sql$/;
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

type D1BindingConfig = { binding?: unknown; migrations_dir?: unknown; migrations_table?: unknown };
type WranglerConfig = {
	d1_databases?: D1BindingConfig[];
	env?: Record<string, { d1_databases?: D1BindingConfig[] }>;
};

function readWranglerConfig(): WranglerConfig {
	const file = path.join(root, "wrangler.jsonc");
	const errors: ParseError[] = [];
	const value: unknown = parse(readFileSync(file, "utf8"), errors, { allowTrailingComma: true });
	if (errors.length > 0 || typeof value !== "object" || value === null) {
		const first = errors[0];
		const detail = first ? `${printParseErrorCode(first.error)} at offset ${first.offset}` : "";
		throw new Error(`next.config: cannot parse ${file}: ${detail || "not an object"}`);
	}
	return value as WranglerConfig;
}

/** The one value a DB binding setting has across the top level and every environment. */
function bindingSetting(
	config: WranglerConfig,
	key: "migrations_dir" | "migrations_table",
	fallback: string,
): string {
	const scopes: [string, D1BindingConfig[] | undefined][] = [
		["top level", config.d1_databases],
		...Object.entries(config.env ?? {}).map(
			([name, env]): [string, D1BindingConfig[] | undefined] => [`env.${name}`, env.d1_databases],
		),
	];
	const values = new Map<string, string[]>();
	for (const [scope, bindings] of scopes) {
		const binding = bindings?.find((entry) => entry.binding === DB_BINDING);
		if (!binding) continue;
		const raw = binding[key];
		const value = typeof raw === "string" && raw !== "" ? raw : fallback;
		values.set(value, [...(values.get(value) ?? []), scope]);
	}
	if (values.size > 1) {
		const listing = [...values].map(([value, where]) => `${value} (${where.join(", ")})`);
		throw new Error(
			`next.config: the ${DB_BINDING} binding's ${key} differs between environments: ${listing.join("; ")}. One build serves every environment, so it must be the same.`,
		);
	}
	return values.keys().next().value ?? fallback;
}

function buildVersion(): string {
	const fromEnv = process.env.WORKERS_PIPELINE_VERSION || process.env.GITHUB_SHA;
	if (fromEnv) return fromEnv;
	try {
		return execFileSync("git", ["rev-parse", "HEAD"], {
			cwd: root,
			encoding: "utf8",
			stdio: ["ignore", "pipe", "ignore"],
		}).trim();
	} catch {
		return "dev";
	}
}

function newestMigration(dir: string): string {
	let names: string[];
	try {
		names = readdirSync(path.resolve(root, dir));
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code === "ENOENT") return "";
		throw error;
	}
	let best: { number: number; name: string } | undefined;
	for (const name of names) {
		const match = MIGRATION_FILE.exec(name);
		if (!match?.[1]) continue;
		const number = Number.parseInt(match[1], 10);
		if (!best || number > best.number || (number === best.number && name > best.name)) {
			best = { number, name };
		}
	}
	return best?.name ?? "";
}

const wrangler = readWranglerConfig();
const migrationsTable = bindingSetting(wrangler, "migrations_table", "d1_migrations");
if (!TABLE_NAME.test(migrationsTable)) {
	throw new Error(
		`next.config: migrations_table ${JSON.stringify(migrationsTable)} is not a plain SQL name`,
	);
}
const expectedMigration =
	process.env.WORKERS_PIPELINE_EXPECTED_MIGRATION ||
	newestMigration(bindingSetting(wrangler, "migrations_dir", "migrations"));

const nextConfig: NextConfig = {
	env: {
		WORKERS_PIPELINE_VERSION: buildVersion(),
		WORKERS_PIPELINE_EXPECTED_MIGRATION: expectedMigration,
		WORKERS_PIPELINE_MIGRATIONS_TABLE: migrationsTable,
	},
	typescript: { tsconfigPath: "tsconfig.app.json" },
	poweredByHeader: false,
};

export default nextConfig;

initOpenNextCloudflareForDev();
