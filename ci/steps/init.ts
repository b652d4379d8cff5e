import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { applyEdits, modify, parse as parseJsonc } from "jsonc-parser";
import {
	isPagesProject,
	listMigrationSets,
	resolveEnvironment,
	snapshotPathFor,
} from "../config/load.ts";
import {
	type Acknowledgement,
	type D1Database,
	type Naming,
	type ProjectConfig,
	pipelineSettingsSchema,
} from "../config/schema.ts";
import { DEFAULT_PIPELINE_CONFIG } from "../constants.ts";
import { readDefaultBranch, readGitTopLevel } from "../git.ts";
import { DEFAULT_HEALTH_OPTIONS } from "../health/index.ts";
import { detectNaming } from "../migrations/catalog.ts";
import { readCheckedCatalog } from "../migrations/check.ts";
import { findPnpRuntime } from "../pnp.ts";
import { runTool } from "../process.ts";
import type { Finding } from "../report/model.ts";
import {
	configuredFormatCommand,
	configuredFormatter,
	planFormatCheck,
	readProjectFacts,
} from "./_checks.ts";
import { defineStep, makeStepResult } from "./_step.ts";
import {
	committedWranglerTypes,
	detectFramework,
	type Framework,
	type PackageManager,
	readPackageJson,
	readPackageManager,
	scriptCommand,
	typegenScript,
} from "./_toolchain.ts";
import { distinctDatabases } from "./lint.ts";
import { migrationTestStep } from "./migration-test.ts";

export const VERSION_BINDING = DEFAULT_HEALTH_OPTIONS.versionBinding;
/** How each package manager runs a dependency's bin. */
const EXEC = { npm: "npx", pnpm: "pnpm exec", yarn: "yarn", bun: "bunx" } as const;
export const WORKFLOW_FILE = ".github/workflows/workers-pipeline.yml";
const DAGGER_VERSION = "0.21.9";

export interface InitArgs {
	project: ProjectConfig;
	/** Rewrite files init wrote before (settings, health route, workflow, snapshot). */
	force: boolean;
	/** The Dagger module the workflow calls (`github.com/<owner>/workers-pipeline@<ref>`). */
	module?: string;
	/** Where the user ran the command: printed paths are relative to it (default: the app directory). */
	shownFrom?: string;
}

export type FileAction = "created" | "updated" | "kept" | "overwritten";

export interface InitFile {
	path: string;
	action: FileAction;
	note: string;
}

// Never acknowledged: init writes the snapshot, and a history that does not replay must be fixed.
// CATALOG_EMPTY is the config missing the history (e.g. no migrations_pattern), not history.
const NOT_ACKNOWLEDGED = new Set([
	"SNAPSHOT_MISSING",
	"SNAPSHOT_DRIFT",
	"REPLAY_FAILED",
	"CATALOG_EMPTY",
]);

/** What a team checks before keeping an acknowledgement init wrote; by code, else generic. */
const REVIEW_HINTS: Record<string, string> = {
	CATALOG_BAD_NAME: "the name is already recorded in d1_migrations, so renaming would re-apply it",
	CATALOG_DUPLICATE_NUMBER:
		"both files are applied everywhere; their relative order no longer matters",
	D1_FOREIGN_KEYS_OFF:
		"the rebuild already ran; check no child rows were lost (D1 ignores foreign_keys=OFF)",
	REPLAY_DROP_CASCADE:
		"the rebuild already ran; check the child tables kept their rows in production",
	D1_DESTRUCTIVE: "the data loss was intended when it ran",
};

/**
 * One acknowledgement per finding code, listing the files (relative to the migrations dir), with
 * a reason that tells the team to review it. Pure.
 */
export function planAcknowledgements(
	findings: readonly Finding[],
	{ dirs, date }: { dirs: readonly string[]; date: string },
): Acknowledgement[] {
	const byCode = new Map<string, Set<string>>();
	for (const f of findings) {
		if (f.acknowledged || NOT_ACKNOWLEDGED.has(f.code) || f.code.startsWith("CONFIG_")) continue;
		if (f.severity !== "error" && f.severity !== "warning") continue;
		const files = byCode.get(f.code) ?? new Set<string>();
		if (f.file) files.add(relativeToDirs(f.file, dirs));
		byCode.set(f.code, files);
	}
	return [...byCode.entries()]
		.sort(([a], [b]) => (a < b ? -1 : 1))
		.map(([code, files]) => ({
			code,
			...(files.size ? { files: [...files].sort() } : {}),
			reason: `REVIEW: existing history at adoption (workers-pipeline init, ${date}); ${REVIEW_HINTS[code] ?? "replace this with why it is safe to keep"}.`,
		}));
}

function relativeToDirs(file: string, dirs: readonly string[]): string {
	const dir = dirs.find((d) => d !== "." && file.startsWith(`${d}/`));
	return dir ? file.slice(dir.length + 1) : file;
}

/** workers-pipeline.jsonc as init writes it: commented, naming and acknowledgements. Pure. */
export function renderSettings({
	naming,
	acknowledge,
	extra = {},
}: {
	naming: Naming;
	acknowledge: readonly Acknowledgement[];
	extra?: Record<string, unknown>;
}): string {
	const body = JSON.stringify({ migrations: { naming, acknowledge }, ...extra }, null, "\t");
	const text = [
		"// workers-pipeline settings (docs/configuration.md). Written by `workers-pipeline init`.",
		"// Each acknowledgement keeps an existing finding on purpose: review every REVIEW reason,",
		"// replace it with why the finding is safe to keep, or fix the migration instead.",
		body,
		"",
	].join("\n");
	// What init writes must load: a schema change here fails init's own tests, not a user's run.
	pipelineSettingsSchema.parse(parseJsonc(text));
	return text;
}

/** Adds `version_metadata` to the top level and every env of a JSONC config, keeping comments. Pure. */
export function addVersionMetadataJsonc(text: string): string {
	const config = (parseJsonc(text, [], { allowTrailingComma: true }) ?? {}) as {
		version_metadata?: unknown;
		env?: Record<string, { version_metadata?: unknown }>;
	};
	const paths: (string | number)[][] = [];
	if (!config.version_metadata) paths.push(["version_metadata"]);
	// Bindings are not inherited by environments (wrangler's config docs): each env needs its own.
	for (const [name, env] of Object.entries(config.env ?? {})) {
		if (!env?.version_metadata) paths.push(["env", name, "version_metadata"]);
	}
	let out = text;
	for (const at of paths) {
		const edits = modify(
			out,
			at,
			{ binding: VERSION_BINDING },
			{
				formattingOptions: { insertSpaces: !/^\t/m.test(out), tabSize: 2, eol: "\n" },
			},
		);
		out = applyEdits(out, edits);
	}
	return out;
}

/** The same for wrangler.toml, by text: new tables appended, nothing else touched. Pure. */
export function addVersionMetadataToml(text: string): string {
	const tables = [...text.matchAll(/^\s*\[\[?\s*([^\]]+?)\s*\]\]?/gm)].map((m) => m[1] as string);
	const envs = new Set<string>();
	for (const table of tables) {
		const m = /^env\.("[^"]+"|[A-Za-z0-9_-]+)/.exec(table);
		if (m) envs.add(m[1] as string);
	}
	const additions: string[] = [];
	if (!tables.includes("version_metadata")) {
		additions.push(`[version_metadata]\nbinding = "${VERSION_BINDING}"`);
	}
	for (const env of envs) {
		if (!tables.includes(`env.${env}.version_metadata`)) {
			additions.push(`[env.${env}.version_metadata]\nbinding = "${VERSION_BINDING}"`);
		}
	}
	if (additions.length === 0) return text;
	const base = text.endsWith("\n") ? text : `${text}\n`;
	return `${base}\n# The running version for the health route (workers-pipeline init).\n${additions.join("\n\n")}\n`;
}

export interface HealthPlan {
	file?: string;
	content?: string;
	/** For a file init edits (Hono's entry): the edited text. */
	edit?: (text: string) => string | undefined;
	note: string;
}

const nextRoute = (
	options: string,
) => `import { createNextHealthRoute } from "workers-pipeline/health/next";

// The health contract deploy checks: version, schema head and expected head, database reachable.
export const { GET } = createNextHealthRoute(${options});
export const dynamic = "force-dynamic";
`;

/**
 * The health handler's options for this project, as source text: "" for the defaults (binding
 * DB, or the Worker's only D1 binding; wrangler's d1_migrations), else the binding and ledger
 * table every environment's first D1 binding (the one deploy checks) shares. Pure.
 */
export function renderHealthOptions(
	databases: readonly { binding: string; migrationsTable: string }[],
): { options: string; note?: string } {
	const distinct = new Map(databases.map((d) => [`${d.binding}\0${d.migrationsTable}`, d]));
	if (distinct.size === 0) return { options: "" };
	if (distinct.size > 1) {
		return {
			options: "",
			note: `your environments' D1 bindings differ (${[...distinct.values()].map((d) => d.binding).join(", ")}): pass the handler { binding, migrationsTable } per environment`,
		};
	}
	const only = [...distinct.values()][0];
	if (only === undefined) return { options: "" };
	const parts = [
		// With several D1 bindings the handler cannot guess, so a name other than DB is written.
		...(only.binding === DEFAULT_HEALTH_OPTIONS.binding
			? []
			: [`binding: ${JSON.stringify(only.binding)}`]),
		...(only.migrationsTable === DEFAULT_HEALTH_OPTIONS.migrationsTable
			? []
			: [`migrationsTable: ${JSON.stringify(only.migrationsTable)}`]),
	];
	return { options: parts.length === 0 ? "" : `{ ${parts.join(", ")} }` };
}

/** Inserts `app.get(<path>, healthRoute())` after `const app = new Hono(...)`, and its import. Pure. */
export function addHonoHealthRoute(
	text: string,
	healthPath: string,
	options = "",
): string | undefined {
	if (text.includes("workers-pipeline/health")) return text;
	const app = /^(?:export\s+)?const\s+(\w+)\s*=\s*new\s+Hono\b[^\n]*$/m.exec(text);
	if (!app) return undefined;
	const statementEnd = text.indexOf("\n", app.index);
	const lineEnd = statementEnd === -1 ? text.length : statementEnd;
	const route = `\n${app[1]}.get("${healthPath}", healthRoute(${options}));`;
	let out = `${text.slice(0, lineEnd)}${route}${text.slice(lineEnd)}`;
	const imports = [...out.matchAll(/^import\s[^;]*;[^\n]*$/gm)];
	const last = imports.at(-1);
	const importLine = `import { healthRoute } from "workers-pipeline/health/hono";`;
	out = last
		? `${out.slice(0, (last.index ?? 0) + last[0].length)}\n${importLine}${out.slice((last.index ?? 0) + last[0].length)}`
		: `${importLine}\n${out}`;
	return out;
}

const firstText = (read: (rel: string) => string | undefined, files: readonly string[]) => {
	for (const file of files) {
		const text = read(file);
		if (text !== undefined) return { file, text };
	}
	return undefined;
};
const SCRIPT_EXTENSIONS = ["ts", "mts", "js", "mjs", "tsx", "jsx"];

/**
 * A React Router (7+) or Remix resource route. React Router routes only what its route config
 * (`<appDirectory>/routes.ts`) lists, unless that config uses @react-router/fs-routes'
 * flatRoutes(); its loader context is a RouterContextProvider once middleware is on (the v8
 * default), so the env comes from cloudflare:workers, which works either way on the Vite plugin.
 */
function remixHealthRoute({
	healthPath,
	args,
	importLine,
	read,
	dependencies,
}: {
	healthPath: string;
	args: string;
	importLine: string;
	read: (rel: string) => string | undefined;
	dependencies: Readonly<Record<string, string>>;
}): HealthPlan {
	const name = healthPath.replace(/^\//, "").replaceAll("/", ".");
	if (!dependencies["react-router"] && !dependencies["@react-router/dev"]) {
		// Remix v2: file routes in app/routes, the env in the load context (@remix-run/cloudflare).
		return {
			note: `add the health route by hand, as a resource route: app/routes/${name}.ts with \`export const loader = ({ request, context }: LoaderFunctionArgs) => handleHealth(request, context.cloudflare.env${args});\`, \`import type { LoaderFunctionArgs } from "@remix-run/cloudflare";\` and ${importLine}`,
		};
	}
	const config = firstText(
		read,
		SCRIPT_EXTENSIONS.map((ext) => `react-router.config.${ext}`),
	)?.text;
	const appDirectory = /\bappDirectory\s*:\s*["'`]([^"'`]+)["'`]/.exec(config ?? "")?.[1] ?? "app";
	const appDir = appDirectory.replace(/^\.\//, "").replace(/\/$/, "");
	const routes = firstText(
		read,
		SCRIPT_EXTENSIONS.map((ext) => `${appDir}/routes.${ext}`),
	);
	const flat = routes === undefined || /\bflatRoutes\s*\(/.test(routes.text);
	const rootDirectory =
		/\brootDirectory\s*:\s*["'`]([^"'`]+)["'`]/.exec(routes?.text ?? "")?.[1] ?? "routes";
	const file = `${appDir}/${flat ? rootDirectory.replace(/^\.\//, "") : "routes"}/${name}.ts`;
	const handler = `\`export const loader = ({ request }: { request: Request }) => handleHealth(request, env${args});\`, \`import { env } from "cloudflare:workers";\` and ${importLine}`;
	const register =
		routes !== undefined && !flat
			? `; then list it in ${routes.file}: \`route("${healthPath.replace(/^\//, "")}", "${file.slice(appDir.length + 1)}")\` (\`route\` from "@react-router/dev/routes")`
			: "";
	return {
		note: `add the health route by hand, as a resource route: ${file} with ${handler}${register}`,
	};
}

/** Where the health route goes for this framework, or what to add by hand. Pure but for `exists` and `read`. */
export function planHealthRoute({
	framework,
	root,
	main,
	healthPath,
	exists,
	read = () => undefined,
	options = "",
	dependencies = {},
	pages = false,
}: {
	framework: Framework;
	root: string;
	main: string | undefined;
	healthPath: string;
	exists: (rel: string) => boolean;
	/** A project file's text (undefined: none); React Router's route config is read with it. */
	read?: (rel: string) => string | undefined;
	/** The handler's options as source (renderHealthOptions), "" for its defaults. */
	options?: string;
	/** The app's dependencies and devDependencies (adapter versions). */
	dependencies?: Readonly<Record<string, string>>;
	/** A Pages project (pages_build_output_dir): no fetch handler, Pages Functions routes. */
	pages?: boolean;
}): HealthPlan {
	if (framework === "next") {
		const appDir = exists("src/app") ? "src/app" : "app";
		const ext = exists("tsconfig.json") ? "ts" : "js";
		const file = `${appDir}${healthPath}/route.${ext}`;
		// workers-pipeline/health/next imports @opennextjs/cloudflare: without it, the app's build fails.
		if (!dependencies["@opennextjs/cloudflare"]) {
			const args = options ? `, ${options}` : "";
			return {
				note: dependencies["@cloudflare/next-on-pages"]
					? `add the health route by hand (next-on-pages): ${file} with \`export const runtime = "edge";\`, \`export const GET = (request: Request) => handleHealth(request, getRequestContext().env${args});\`, \`import { getRequestContext } from "@cloudflare/next-on-pages";\` and \`import { handleHealth } from "workers-pipeline/health";\``
					: `not written: a Next.js app runs on Workers through @opennextjs/cloudflare, which is not among its dependencies; install it (npm i @opennextjs/cloudflare, with its open-next.config.ts) and run init again to write ${file}`,
			};
		}
		return {
			file,
			content: nextRoute(options),
			note: "Next.js route handler (workers-pipeline/health/next)",
		};
	}
	// A Hono app on the Cloudflare Vite plugin is built by Vite (framework "vite") but routed by Hono.
	if ((framework === "hono" || (framework === "vite" && dependencies.hono)) && main) {
		const rel = path.relative(root, path.resolve(root, main)).replaceAll(path.sep, "/");
		return {
			file: rel,
			edit: (text) => addHonoHealthRoute(text, healthPath, options),
			note: `Hono route ${healthPath} (workers-pipeline/health/hono)`,
		};
	}
	const args = options ? `, ${options}` : "";
	const importLine = `\`import { handleHealth } from "workers-pipeline/health";\``;
	if (framework === "astro") {
		// @astrojs/cloudflare 13 (Astro 6) dropped locals.runtime for the cloudflare:workers env.
		const major = Number(/\d+/.exec(dependencies["@astrojs/cloudflare"] ?? "")?.[0] ?? Number.NaN);
		const [env, envImport] =
			major >= 13
				? ["env", ' and `import { env } from "cloudflare:workers";`']
				: ["locals.runtime.env", ""];
		const params = major >= 13 ? "{ request }" : "{ request, locals }";
		return {
			note: `add the health route by hand, as an Astro endpoint: src/pages${healthPath}.ts with \`export const prerender = false;\`, \`export const GET: APIRoute = (${params}) => handleHealth(request, ${env}${args});\`, \`import type { APIRoute } from "astro";\`, ${importLine}${envImport}`,
		};
	}
	if (framework === "remix")
		return remixHealthRoute({ healthPath, args, importLine, read, dependencies });
	// Built by Vite (SvelteKit, RedwoodSDK) or Nitro (Nuxt), so known by their own packages.
	if (dependencies["@sveltejs/kit"]) {
		return {
			note: `add the health route by hand, as a SvelteKit endpoint: src/routes${healthPath}/+server.ts with \`export const GET = ({ request, platform }) => handleHealth(request, platform?.env ?? {}${args});\` (@sveltejs/adapter-cloudflare's platform.env) and ${importLine}`,
		};
	}
	// TanStack Start: a server route (its file-based routes in src/routes), the env from cloudflare:workers.
	const start = ["react", "solid"].find((ui) => dependencies[`@tanstack/${ui}-start`]);
	if (start) {
		return {
			note: `add the health route by hand, as a TanStack Start server route: src/routes${healthPath}.ts with \`export const Route = createFileRoute("${healthPath}")({ server: { handlers: { GET: ({ request }) => handleHealth(request, env${args}) } } });\`, \`import { createFileRoute } from "@tanstack/${start}-router";\`, \`import { env } from "cloudflare:workers";\` and ${importLine}`,
		};
	}
	if (dependencies.rwsdk) {
		return {
			note: `add the health route by hand, in RedwoodSDK's defineApp routes (src/worker.tsx): \`route("${healthPath}", ({ request }) => handleHealth(request, env${args}))\` with \`import { env } from "cloudflare:workers";\`, \`import { route } from "rwsdk/router";\` and ${importLine}`,
		};
	}
	if (dependencies.nuxt) {
		return {
			note: `add the health route by hand, as a Nuxt server route: server/routes${healthPath}.get.ts with \`export default defineEventHandler((event) => handleHealth(toWebRequest(event), event.context.cloudflare.env${args}));\` (Nitro's cloudflare preset) and ${importLine}`,
		};
	}
	// Pages Functions: functions/api/health.ts answers /api/health (file-based routing).
	if (pages) {
		return {
			note: `add the health route by hand, as a Pages Function: functions${healthPath}.ts with \`export const onRequestGet = ({ request, env }: { request: Request; env: object }) => handleHealth(request, env${args});\` and ${importLine}`,
		};
	}
	return {
		note: `add the health route by hand: in your fetch handler, \`if (new URL(request.url).pathname === "${healthPath}") return handleHealth(request, env${args});\` with ${importLine}`,
	};
}

/** Where the workflow goes: the repository's .github (GitHub reads no other), one file per app. Pure. */
export function planWorkflowFile({ source }: { source: string }): string {
	return source === "."
		? WORKFLOW_FILE
		: WORKFLOW_FILE.replace(/\.yml$/, `-${appSlug(source)}.yml`);
}

const appSlug = (source: string) => source.replace(/[^A-Za-z0-9]+/g, "-").replace(/^-|-$/g, "");

/**
 * The GitHub workflow: `dagger call ci` on every pull request and push to the default branch. `source` is the
 * app's directory in the repository; the module's constructor flags go before the function
 * (`dagger call --source . ci`), and a module used from elsewhere needs `--source` explicitly
 * (its own default path is the module's repository). Pure.
 */
export function renderWorkflow({
	module,
	source = ".",
	appDir,
	wranglerConfig,
	branch = "main",
}: {
	module: string;
	source?: string;
	/** The branch whose pushes run it (the repository's default branch). */
	branch?: string;
	/** The app's directory inside `source` (a monorepo app installed from its workspace). */
	appDir?: string;
	wranglerConfig?: string;
}): string {
	const where = appDir ? (source === "." ? appDir : `${source}/${appDir}`) : source;
	const app = where === "." ? "" : ` (${where})`;
	const group = where === "." ? "" : `${appSlug(where)}-`;
	const config = `${appDir ? ` --app-dir ${appDir}` : ""}${wranglerConfig ? ` --wrangler-config ${wranglerConfig}` : ""}`;
	return `# Written by \`workers-pipeline init\`: the same \`ci\` a laptop runs, in the Dagger module.
name: workers-pipeline${app}

on:
  pull_request:
  push:
    branches: [${JSON.stringify(branch)}]

permissions:
  contents: read

concurrency:
  group: workers-pipeline-${group}\${{ github.ref }}
  cancel-in-progress: true

jobs:
  ci:
    runs-on: ubuntu-latest
    timeout-minutes: 30
    steps:
      - uses: actions/checkout@de0fac2e4500dabe0009e67214ff5f5447ce83dd # v6.0.2
        with:
          persist-credentials: false
      - uses: dagger/dagger-for-github@27b130bf0f79a7f6fbbbe0fbca6760dc9bb40a77 # v8.4.1
        with:
          version: "${DAGGER_VERSION}"
          module: ${module}
          call: --source ${source}${config} ci
`;
}

function writeWorkflow(
	writer: Writer,
	next: string[],
	{ project, module, pm }: { project: ProjectConfig; module?: string; pm: PackageManager },
): void {
	const top = readGitTopLevel(project.root) ?? project.root;
	const toPosix = (p: string) => p.replaceAll(path.sep, "/");
	const app = toPosix(path.relative(top, project.root)) || ".";
	const { source, appDir, outside } = planWorkflowSource({
		top,
		root: project.root,
		workspaceRoot: pm.workspaceRoot,
		migrationDirs: listMigrationSets(project).map((set) =>
			path.join(project.root, set.database.migrationsDir),
		),
	});
	const configRel = toPosix(path.relative(project.root, project.wranglerPath));
	// The CLI finds wrangler.json/.jsonc/.toml in the app itself; anything else is named.
	const wranglerConfig = configRel.includes("/") ? configRel : undefined;
	const file = planWorkflowFile({ source: app });
	const rel = toPosix(path.relative(project.root, path.join(top, file)));
	const moduleRef = module ?? "github.com/<owner>/workers-pipeline@<ref>";
	writer.write(
		rel,
		renderWorkflow({
			module: moduleRef,
			source,
			appDir,
			wranglerConfig,
			branch: readDefaultBranch(top) ?? "main",
		}),
		`GitHub Actions: dagger call --source ${source}${appDir ? ` --app-dir ${appDir}` : ""} ci`,
	);
	if (!module)
		next.push(
			`Set the module in ${rel} (module: github.com/<owner>/workers-pipeline@<ref>), or rerun init with --module.`,
		);
	if (outside.length)
		next.push(
			`The Dagger module sees only ${source}, and this app's migrations are outside the repository (${outside.map((dir) => toPosix(path.relative(project.root, dir))).join(", ")}): move them into it, or run \`npx workers-pipeline ci\` in your workflow instead of the Dagger step.`,
		);
}

const isInside = (dir: string, parent: string) => {
	const rel = path.relative(parent, dir);
	return !rel.startsWith("..") && !path.isAbsolute(rel);
};

/**
 * Pure (paths only): what the Dagger module is given (--source, relative to the repository's top)
 * and where the app is in it (--app-dir). A workspace's app goes in with its workspace (the
 * lockfile and packages there); any other app on its own; either widened to the nearest directory
 * that also holds the migrations kept elsewhere in the repository (a shared `packages/db`), since
 * the module sees only --source. `outside`: migration dirs outside the repository itself.
 */
export function planWorkflowSource({
	top,
	root,
	workspaceRoot,
	migrationDirs,
}: {
	top: string;
	root: string;
	workspaceRoot: string | undefined;
	migrationDirs: readonly string[];
}): { source: string; appDir: string | undefined; outside: string[] } {
	const toPosix = (p: string) => p.replaceAll(path.sep, "/");
	let base = workspaceRoot && root !== top ? workspaceRoot : root;
	const outside = [...new Set(migrationDirs.filter((dir) => !isInside(dir, top)))];
	for (const dir of migrationDirs) {
		while (isInside(dir, top) && !isInside(dir, base)) base = path.dirname(base);
	}
	const source = toPosix(path.relative(top, base)) || ".";
	const appDir = base === root ? undefined : toPosix(path.relative(base, root));
	return { source, appDir, outside };
}

/**
 * The naming each migrations dir follows (its tool's files decide ties); one preset when every
 * dir agrees, else one per dir, so each tool's next migration fits its own rule.
 */
function readNaming(project: ProjectConfig, databases: readonly D1Database[]): Naming {
	const byDir = new Map<
		string,
		{ names: string[]; drizzleJournal: boolean; prismaLock: boolean }
	>();
	for (const database of databases) {
		const dir = path.join(project.root, database.migrationsDir);
		const entry = byDir.get(database.migrationsDir) ?? {
			names: [],
			drizzleJournal: existsSync(path.join(dir, "meta", "_journal.json")),
			prismaLock: existsSync(path.join(dir, "migration_lock.toml")),
		};
		entry.names.push(
			...readCheckedCatalog(project, database).catalog.migrations.map((m) => m.name),
		);
		byDir.set(database.migrationsDir, entry);
	}
	// A history no other tool's layout claims is wrangler's (`wrangler d1 migrations create`), even
	// when every name so far is snake_case: strict would refuse its next `0007_add-index.sql`.
	// `strict` stays for a project with no migrations yet, whose names we may still choose.
	const detected = [...byDir].map(([dir, { names, ...files }]) => {
		const preset = detectNaming(names, files);
		return [dir, preset === "strict" && names.length > 0 ? "wrangler" : preset] as const;
	});
	const presets = new Set(detected.map(([, preset]) => preset));
	if (presets.size <= 1) return [...presets][0] ?? "strict";
	return Object.fromEntries(detected);
}

/** `"prisma"`, or `db/migrations: prisma, events: drizzle-kit`, for init's summary. Pure. */
export function formatNaming(naming: Naming): string {
	if (typeof naming === "string") return `"${naming}"`;
	if (typeof naming.pattern === "string" && typeof naming.description === "string") return "custom";
	return `per dir (${Object.entries(naming)
		.map(([dir, rule]) => `${dir}: ${typeof rule === "string" ? rule : "custom"}`)
		.join(", ")})`;
}

interface Writer {
	files: InitFile[];
	write(rel: string, content: string, note: string, opts?: { replace?: boolean }): void;
}

function makeWriter(root: string, force: boolean): Writer {
	const files: InitFile[] = [];
	return {
		files,
		write(rel, content, note, { replace = force } = {}) {
			const abs = path.join(root, rel);
			const existed = existsSync(abs);
			if (existed && readFileSync(abs, "utf8") === content) {
				files.push({ path: rel, action: "kept", note: `${note} (unchanged)` });
				return;
			}
			if (existed && !replace) {
				files.push({ path: rel, action: "kept", note: `${note} (exists; --force to rewrite)` });
				return;
			}
			mkdirSync(path.dirname(abs), { recursive: true });
			writeFileSync(abs, content);
			files.push({
				path: rel,
				action: existed ? (force ? "overwritten" : "updated") : "created",
				note,
			});
		},
	};
}

/** The lines wrangler's assets upload must skip in an Astro build (Astro's Cloudflare guide, adapter 12). */
const ASTRO_ASSETS_IGNORE = ["_worker.js", "_routes.json"];

/**
 * Pure: public/.assetsignore for an Astro app whose wrangler `main` lies inside its
 * `assets.directory` (@astrojs/cloudflare before 13: main dist/_worker.js/index.js, assets ./dist).
 * wrangler refuses to upload a _worker.js directory as an asset (deploy/assets.ts); Astro copies
 * public/ into dist, so the file there keeps the Worker out. The existing text with the missing
 * lines added, or undefined when nothing is missing or the layout does not need it.
 */
export function planAssetsIgnore({
	framework,
	configDir,
	main,
	assetsDirectory,
	existing,
}: {
	framework: Framework;
	configDir: string;
	main: string | undefined;
	assetsDirectory: unknown;
	existing: string | undefined;
}): string | undefined {
	if (framework !== "astro" || !main || typeof assetsDirectory !== "string") return undefined;
	if (!isInside(path.resolve(configDir, main), path.resolve(configDir, assetsDirectory)))
		return undefined;
	const have = new Set((existing ?? "").split(/\r?\n/).map((line) => line.trim()));
	const missing = ASTRO_ASSETS_IGNORE.filter((line) => !have.has(line) && !have.has(`/${line}`));
	if (missing.length === 0) return undefined;
	const base = existing && !existing.endsWith("\n") ? `${existing}\n` : (existing ?? "");
	return `${base}${missing.join("\n")}\n`;
}

function writeAssetsIgnore(
	writer: Writer,
	{ project, framework }: { project: ProjectConfig; framework: Framework },
): void {
	const rel = "public/.assetsignore";
	const abs = path.join(project.root, rel);
	const existing = existsSync(abs) ? readFileSync(abs, "utf8") : undefined;
	const content = planAssetsIgnore({
		framework,
		configDir: path.dirname(project.wranglerPath),
		main: project.wrangler.main,
		assetsDirectory: (project.wrangler as { assets?: { directory?: unknown } }).assets?.directory,
		existing,
	});
	if (content === undefined) return;
	// Adding lines to the team's own file is an edit, not an overwrite: no --force needed.
	writer.write(rel, content, "keeps the built Worker (_worker.js) out of the uploaded assets", {
		replace: true,
	});
}

/** Pure: a path relative to the app directory, as seen from `from` (where the user ran init), as tools print paths. */
export function shownPath(rel: string, { root, from }: { root: string; from: string }): string {
	return path.relative(from, path.join(root, rel)).replaceAll(path.sep, "/") || ".";
}

/** What to run after init: the Env types again, ci, a per-environment build, a Pages project's deploy. */
function pushRunSteps(
	next: string[],
	{
		project,
		pm,
		pkg,
		writer,
		envPath,
	}: {
		project: ProjectConfig;
		pm: PackageManager;
		pkg: ReturnType<typeof readPackageJson>;
		writer: Writer;
		envPath: string | undefined;
	},
): void {
	const run = (script: string) =>
		scriptCommand(pm, script, envPath)
			.join(" ")
			.replace(/^npx --yes /, "npx ");
	// The Env types `wrangler types` generated lack the binding init just added.
	const configRel = path.relative(project.root, project.wranglerPath).replaceAll(path.sep, "/");
	if (writer.files.some((f) => f.path === configRel && f.action !== "kept")) {
		const typegen = typegenScript(pkg?.scripts);
		const [types] = typegen ? [] : committedWranglerTypes(project.root, pkg?.scripts);
		const regenerate = typegen
			? run(typegen)
			: types &&
				`${EXEC[pm.name]} wrangler types${types.file === "worker-configuration.d.ts" ? "" : ` ${types.file}`}`;
		if (regenerate) {
			next.push(
				`Run \`${regenerate}\` so your generated Env types have ${VERSION_BINDING}, then commit them.`,
			);
		}
	}
	next.push(
		`Run \`${EXEC[pm.name]} workers-pipeline ci\` (${pm.name}${pm.source === "default" ? "" : ` from ${pm.source}`}; scripts run as \`${run("<script>")}\`).`,
	);
	// The plugin's build holds one environment's Worker (deploy refuses another: BUILD_ENV_MISMATCH).
	const deps = { ...pkg?.dependencies, ...pkg?.devDependencies };
	if (deps["@cloudflare/vite-plugin"] && project.environments.length > 0) {
		next.push(
			`Deploy with a build for that environment: the Cloudflare Vite plugin builds one (\`${EXEC[pm.name]} workers-pipeline build --env ${project.environments[0]}\`, then \`deploy --env ${project.environments[0]}\`).`,
		);
	}
	if (isPagesProject(project)) {
		next.push(
			`A Pages project: \`ci\`, \`plan\` and \`migrate\` work on it; deploy it with \`wrangler pages deploy\` after \`${EXEC[pm.name]} workers-pipeline migrate\` (\`workers-pipeline deploy\` ships Workers: move it to Workers with static assets for health-checked deploys with rollback).`,
		);
	}
}

/** `init`: settings with acknowledgements, health route, version binding, workflow, snapshot. */
export const initStep = defineStep<InitArgs>({
	name: "init",
	async run(ctx, { project, force, module, shownFrom = project.root }) {
		const started = performance.now();
		const writer = makeWriter(project.root, force);
		const next: string[] = [];
		const findings: Finding[] = [];
		const pkg = readPackageJson(project.root);
		const framework = detectFramework(pkg);
		const pm = readPackageManager(project.root);

		// 1. Settings: the naming the history follows, and an acknowledgement per existing finding.
		const databases = distinctDatabases(project);
		const settingsRel = DEFAULT_PIPELINE_CONFIG;
		const keepSettings = project.settingsPath !== undefined && !force;
		let adopted = project;
		if (keepSettings) {
			writer.files.push({
				path: settingsRel,
				action: "kept",
				note: "settings (exists; --force to rewrite with fresh acknowledgements)",
			});
		} else {
			const base = pipelineSettingsSchema.parse({});
			const naming = readNaming(project, databases);
			const bare = {
				...project,
				settings: { ...base, migrations: { ...base.migrations, naming } },
			};
			const found = await collectFindings(ctx, bare);
			const acknowledge = planAcknowledgements(found.findings, {
				dirs: databases.map((d) => d.migrationsDir),
				date: new Date().toISOString().slice(0, 10),
			});
			findings.push(...found.blocking);
			writer.write(
				settingsRel,
				renderSettings({ naming, acknowledge }),
				`naming ${formatNaming(naming)}, ${acknowledge.length} acknowledgement(s) of the existing history`,
				{ replace: true },
			);
			if (acknowledge.length)
				next.push(
					`Review the ${acknowledge.length} REVIEW reason(s) in ${settingsRel}: say why each finding is safe to keep.`,
				);
			adopted = {
				...bare,
				settingsPath: path.join(project.root, settingsRel),
				settings: { ...bare.settings, migrations: { ...bare.settings.migrations, acknowledge } },
			};
		}

		// 2. The health route for the framework.
		writeHealthRoute(writer, next, { project: adopted, framework });

		// 3. The version metadata binding, comments and layout kept.
		writeVersionBinding(writer, project);

		// 3b. An Astro Worker built inside its assets directory: what wrangler must not upload.
		writeAssetsIgnore(writer, { project, framework });

		// 4. The workflow calling the Dagger module.
		writeWorkflow(writer, next, { project, module, pm });

		// 5. The schema snapshot, from the replay of the history.
		await writeSnapshot(ctx, writer, findings, { project: adopted, force });

		// 6. What init wrote, in the project's own style: its format check must pass right after.
		await formatWritten(ctx, writer, next, adopted);

		pushRunSteps(next, { project, pm, pkg, writer, envPath: ctx.env.PATH });
		next.push("Commit the files above.");
		const written = writer.files.filter((f) => f.action !== "kept").length;
		return makeStepResult("init", started, {
			ok: !findings.some((f) => f.severity === "error"),
			summary: `${written} file(s) written, ${writer.files.length - written} kept (${framework} app, ${pm.name})`,
			findings,
			data: {
				framework,
				packageManager: pm.name,
				files: writer.files,
				next,
				lines: [
					...writer.files.map(
						(f) =>
							`  ${f.action.padEnd(11)} ${shownPath(f.path, { root: project.root, from: shownFrom }).padEnd(44)} ${f.note}`,
					),
					"",
					"next:",
					...next.map((line, i) => `  ${i + 1}. ${line}`),
				],
			},
		});
	},
});

/**
 * Runs the project's formatter (prettier or biome where its config is) in write mode over the
 * files init created or changed, so the format check `ci` runs passes on them: init writes tabs
 * and double quotes, the project may want two spaces. A format check of another kind (a script,
 * format.command) has no write mode init can know: the user is told to run theirs.
 */
async function formatWritten(
	ctx: Parameters<typeof migrationTestStep.run>[0],
	writer: Writer,
	next: string[],
	project: ProjectConfig,
): Promise<void> {
	const written = writer.files.filter((f) => f.action !== "kept");
	if (written.length === 0) return;
	const facts = readProjectFacts(project.root, ctx.env.PATH);
	const check = planFormatCheck(facts, configuredFormatCommand(project.settings));
	if (check === undefined) return;
	const files = written.map((f) => f.path);
	const formatter = configuredFormatter(facts);
	// Files a formatter has no parser for (the .sql snapshot) are skipped, not errors.
	const tool =
		formatter === undefined
			? undefined
			: {
					...formatter,
					args:
						formatter.name === "prettier"
							? ["--write", "--ignore-unknown", ...files]
							: [
									"format",
									"--write",
									"--files-ignore-unknown=true",
									"--no-errors-on-unmatched",
									...files,
								],
				};
	if (tool === undefined) {
		next.push(
			`Run your formatter on the files above: your format check (${check.display}) runs in ci.`,
		);
		return;
	}
	ctx.progress(
		`${tool.name} ${tool.args.slice(0, -files.length).join(" ")} (the files init wrote)`,
	);
	const result = await runTool({
		file: tool.file,
		args: tool.args,
		cwd: project.root,
		env: ctx.env,
		signal: ctx.signal,
	});
	if (result.failed) {
		next.push(
			`${tool.name} could not format the files init wrote (exit ${result.exitCode ?? result.signal}): run ${check.fix} before committing. ${(result.stderr || result.stdout).trim().split("\n").slice(-3).join(" ")}`,
		);
		return;
	}
	// Said only of the kinds it formats (prettier: also YAML and Markdown; neither: SQL, TOML).
	const formats =
		tool.name === "prettier" ? /\.(?:[cm]?[jt]sx?|jsonc?|ya?ml|md)$/ : /\.(?:[cm]?[jt]sx?|jsonc?)$/;
	for (const file of written)
		if (formats.test(file.path)) file.note += ` · formatted with ${tool.name}`;
}

/** The findings of a bare adoption (no acknowledgements): static and replay, for every set. */
async function collectFindings(
	ctx: Parameters<typeof migrationTestStep.run>[0],
	project: ProjectConfig,
): Promise<{ findings: Finding[]; blocking: Finding[] }> {
	const findings: Finding[] = [];
	const blocking: Finding[] = [];
	// A Worker without D1 has no history to adopt; the rest of init still applies.
	for (const { env, database } of listMigrationSets(project)) {
		const raw = readCheckedCatalog(project, database).raw;
		findings.push(...raw);
		// Shown, not acknowledged: a set init finds nothing in is a config to fix.
		blocking.push(...raw.filter((f) => f.code === "CATALOG_EMPTY"));
		const tested = await migrationTestStep.run(ctx, {
			project,
			env,
			binding: database.binding,
			includeLint: false,
		});
		findings.push(...tested.findings);
		// A history that does not replay cannot be acknowledged away: the team must fix it first.
		for (const f of tested.findings.filter((f) => f.code === "REPLAY_FAILED")) {
			blocking.push({
				...f,
				message: `${f.message} The existing history does not replay on a fresh database; fix the order or the SQL (a new migration if it is applied), then run init again.`,
			});
		}
	}
	return { findings, blocking };
}

const readTextIfFile = (file: string): string | undefined => {
	try {
		return readFileSync(file, "utf8");
	} catch {
		return undefined;
	}
};

function writeHealthRoute(
	writer: Writer,
	next: string[],
	{ project, framework }: { project: ProjectConfig; framework: Framework },
): void {
	const healthPath = project.settings.deploy.healthPath;
	const pkg = readPackageJson(project.root);
	const { options, note } = renderHealthOptions(
		[undefined, ...project.environments].flatMap((env) =>
			resolveEnvironment(project, env).databases.slice(0, 1),
		),
	);
	if (note) next.push(`Health route: ${note}.`);
	const plan = planHealthRoute({
		framework,
		root: project.root,
		main: project.wrangler.main,
		healthPath,
		exists: (rel) => existsSync(path.join(project.root, rel)),
		read: (rel) => readTextIfFile(path.join(project.root, rel)),
		options,
		dependencies: { ...pkg?.dependencies, ...pkg?.devDependencies },
		pages: isPagesProject(project),
	});
	const subpath = framework === "next" ? "./health/next" : "./health/hono";
	if (plan.file && !packageExports(project.root, subpath)) {
		// An import the installed package cannot resolve would break the app's typecheck and build.
		next.push(
			`Health route not written: the installed workers-pipeline has no "${subpath.slice(2)}" export; update it (npm i -D workers-pipeline@latest) and run init again.`,
		);
		return;
	}
	if (plan.file && plan.content) {
		writer.write(plan.file, plan.content, plan.note);
	} else if (plan.file && plan.edit) {
		const abs = path.join(project.root, plan.file);
		const text = existsSync(abs) ? readFileSync(abs, "utf8") : "";
		const edited = plan.edit(text);
		if (edited === undefined) {
			next.push(
				`Add \`app.get("${healthPath}", healthRoute(${options}))\` (import { healthRoute } from "workers-pipeline/health/hono") to ${plan.file}: init found no \`const app = new Hono()\` there.`,
			);
		} else {
			writer.write(plan.file, edited, plan.note, { replace: true });
		}
	} else {
		next.push(`Health route: ${plan.note}.`);
	}
	const deps = { ...readPackageJson(project.root)?.dependencies };
	if (!deps["workers-pipeline"]) {
		next.push(
			"The health route imports workers-pipeline at run time: keep it in dependencies, not only devDependencies.",
		);
	}
}

/**
 * Whether the workers-pipeline the app imports (resolved from its root as Node resolves it: its
 * node_modules, its workspace's hoisted one, or Yarn PnP's map when this process runs under it)
 * exports `subpath`; this repository counts as its own app. A PnP app this process cannot
 * resolve from (no runtime loaded) imports the package running this CLI.
 */
export function packageExports(root: string, subpath: string): boolean {
	const resolve = (from: string) => {
		const require = createRequire(from);
		try {
			return require.resolve("workers-pipeline/package.json");
		} catch {
			// A version whose exports omit ./package.json: the node_modules dirs Node searches.
			return (require.resolve.paths("workers-pipeline") ?? [])
				.map((dir) => path.join(dir, "workers-pipeline", "package.json"))
				.find((file) => existsSync(file));
		}
	};
	const installed =
		resolve(path.join(root, "package.json")) ??
		// The package's own name resolves to itself from inside it (Node's self-reference).
		(findPnpRuntime(root) ? resolve(fileURLToPath(import.meta.url)) : undefined);
	const candidates = [installed, path.join(root, "package.json")].filter((f) => f !== undefined);
	for (const file of candidates) {
		try {
			const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: string; exports?: unknown };
			if (pkg.name !== "workers-pipeline") continue;
			return typeof pkg.exports === "object" && pkg.exports !== null && subpath in pkg.exports;
		} catch {
			// Not installed there: try the next place.
		}
	}
	return false;
}

function writeVersionBinding(writer: Writer, project: ProjectConfig): void {
	const rel = path.relative(project.root, project.wranglerPath).replaceAll(path.sep, "/");
	const text = readFileSync(project.wranglerPath, "utf8");
	const edited = rel.endsWith(".toml")
		? addVersionMetadataToml(text)
		: addVersionMetadataJsonc(text);
	writer.write(
		rel,
		edited,
		`version_metadata binding ${VERSION_BINDING} (the health route's version)`,
		{ replace: true },
	);
}

async function writeSnapshot(
	ctx: Parameters<typeof migrationTestStep.run>[0],
	writer: Writer,
	findings: Finding[],
	{ project, force }: { project: ProjectConfig; force: boolean },
): Promise<void> {
	const written = new Set<string>();
	for (const { env, database } of listMigrationSets(project)) {
		const rel = snapshotPathFor(project, database);
		// Sets never share a path (snapshotPathFor refuses it); written once each all the same.
		if (written.has(rel)) continue;
		written.add(rel);
		const args = { project, env, binding: database.binding, includeLint: false };
		const existed = existsSync(path.join(project.root, rel));
		const check = await migrationTestStep.run(ctx, args);
		const data = check.data;
		if (!data?.replay.ok) {
			writer.files.push({
				path: rel,
				action: "kept",
				note: `schema snapshot of binding "${database.binding}" not written: the history does not replay`,
			});
			continue;
		}
		if (data.snapshot.status === "matches") {
			writer.files.push({ path: rel, action: "kept", note: "schema snapshot (unchanged)" });
			continue;
		}
		if (existed && !force) {
			writer.files.push({
				path: rel,
				action: "kept",
				note: "schema snapshot differs from the migrations (exists; --force to rewrite)",
			});
			findings.push(...check.findings.filter((f) => f.code === "SNAPSHOT_DRIFT"));
			continue;
		}
		await migrationTestStep.run(ctx, { ...args, updateSnapshot: true });
		writer.files.push({
			path: rel,
			action: existed ? "overwritten" : "created",
			note: `schema snapshot of binding "${database.binding}"`,
		});
	}
}
