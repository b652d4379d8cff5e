import { spawnSync } from "node:child_process";
import {
	cpSync,
	existsSync,
	mkdirSync,
	mkdtempSync,
	readdirSync,
	readFileSync,
	rmSync,
	writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse as parseJsonc } from "jsonc-parser";
import { afterAll, describe, expect, it } from "vitest";
import {
	addHonoHealthRoute,
	addVersionMetadataJsonc,
	addVersionMetadataToml,
	packageExports,
	planAcknowledgements,
	planAssetsIgnore,
	planHealthRoute,
	planWorkflowSource,
	renderHealthOptions,
	renderSettings,
	shownPath,
} from "../../ci/steps/init.ts";
import { captureCli } from "../support/cli.ts";
import { makeProject, REPO, removeProjects } from "../support/project.ts";

const repoRoot = path.resolve(import.meta.dirname, "../..");
const corpusDir = path.resolve(
	repoRoot,
	process.env.WORKERS_PIPELINE_CORPUS ?? "../shared/corpus/d1",
);
const corpusPresent = existsSync(corpusDir);
if (!corpusPresent && process.env.CI)
	throw new Error(`the D1 corpus is required under CI: ${corpusDir} is missing`);
if (!corpusPresent) console.info(`init corpus tests skipped: no corpus at ${corpusDir}`);

const temps: string[] = [];
afterAll(() => {
	for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

describe("addVersionMetadataJsonc()", () => {
	const config = `// the app
{
	"name": "app", // the Worker
	"d1_databases": [{ "binding": "DB" }],
	"env": {
		/* staging */
		"staging": { "name": "app-staging" },
		"production": { "name": "app", "version_metadata": { "binding": "V" } },
	},
}
`;
	it("should add the binding at the top level and to each env without one, keeping comments", () => {
		const out = addVersionMetadataJsonc(config);
		for (const comment of ["// the app", "// the Worker", "/* staging */"])
			expect(out).toContain(comment);
		const parsed = parseJsonc(out) as {
			version_metadata?: unknown;
			env: Record<string, { version_metadata?: unknown }>;
		};
		expect(parsed.version_metadata).toEqual({ binding: "CF_VERSION_METADATA" });
		expect(parsed.env.staging?.version_metadata).toEqual({ binding: "CF_VERSION_METADATA" });
		expect(parsed.env.production?.version_metadata).toEqual({ binding: "V" });
	});
	it("should change nothing the second time", () => {
		const once = addVersionMetadataJsonc(config);
		expect(addVersionMetadataJsonc(once)).toBe(once);
	});
});

describe("addVersionMetadataToml()", () => {
	const toml = `name = "api" # the Worker
main = "src/index.ts"

[[d1_databases]]
binding = "DB"
migrations_dir = "drizzle"

[env.staging]
name = "api-staging"

[[env.staging.d1_databases]]
binding = "DB"
`;
	it("should append the top-level and per-env tables and leave every existing line as it was", () => {
		const out = addVersionMetadataToml(toml);
		expect(out.startsWith(toml)).toBe(true);
		expect(out.slice(toml.length)).toContain('[version_metadata]\nbinding = "CF_VERSION_METADATA"');
		expect(out.slice(toml.length)).toContain(
			'[env.staging.version_metadata]\nbinding = "CF_VERSION_METADATA"',
		);
		expect(addVersionMetadataToml(out)).toBe(out);
	});
});

describe("addHonoHealthRoute()", () => {
	it("should register the route after `new Hono()` and import the adapter after the last import", () => {
		const src = `import { Hono } from "hono";\nimport { users } from "./users";\n\nconst app = new Hono<{ Bindings: Env }>();\napp.route("/users", users);\n\nexport default app;\n`;
		const out = addHonoHealthRoute(src, "/api/health") as string;
		expect(out).toBe(
			`import { Hono } from "hono";\nimport { users } from "./users";\nimport { healthRoute } from "workers-pipeline/health/hono";\n\nconst app = new Hono<{ Bindings: Env }>();\napp.get("/api/health", healthRoute());\napp.route("/users", users);\n\nexport default app;\n`,
		);
		expect(addHonoHealthRoute(out, "/api/health")).toBe(out);
	});
	it("should give up (undefined) when there is no `const app = new Hono()`", () => {
		expect(addHonoHealthRoute("export default { fetch() {} };\n", "/api/health")).toBeUndefined();
	});
});

describe("planHealthRoute(): what to add by hand, in the framework's own shape", () => {
	const plan = (framework: Parameters<typeof planHealthRoute>[0]["framework"], extra = {}) =>
		planHealthRoute({
			framework,
			root: "/app",
			main: undefined,
			healthPath: "/api/health",
			exists: () => false,
			...extra,
		});
	it("an Astro endpoint: locals.runtime.env before @astrojs/cloudflare 13, cloudflare:workers from 13", () => {
		const old = plan("astro", { dependencies: { "@astrojs/cloudflare": "^12.6.0" } });
		expect(old.file).toBeUndefined();
		expect(old.note).toContain("src/pages/api/health.ts");
		expect(old.note).toContain(
			"export const GET: APIRoute = ({ request, locals }) => handleHealth(request, locals.runtime.env);",
		);
		const next = plan("astro", { dependencies: { "@astrojs/cloudflare": "13.0.1" } });
		expect(next.note).toContain(
			"export const GET: APIRoute = ({ request }) => handleHealth(request, env);",
		);
		// Astro's strict tsconfig refuses an untyped parameter (noImplicitAny).
		expect(next.note).toContain('import type { APIRoute } from "astro";');
		expect(next.note).toContain('import { env } from "cloudflare:workers";');
	});
	it("a Remix v2 resource route: a file route, the load context's env, typed", () => {
		const note = plan("remix", {
			options: '{ binding: "MAIN" }',
			dependencies: { "@remix-run/cloudflare": "^2.16.0" },
		}).note;
		expect(note).toContain("app/routes/api.health.ts");
		expect(note).toContain(
			'export const loader = ({ request, context }: LoaderFunctionArgs) => handleHealth(request, context.cloudflare.env, { binding: "MAIN" });',
		);
		expect(note).toContain('import type { LoaderFunctionArgs } from "@remix-run/cloudflare";');
		expect(note).not.toContain("routes.ts");
	});
	describe("a React Router resource route", () => {
		const files = (entries: Record<string, string>) => (rel: string) => entries[rel];
		const rr = (read: (rel: string) => string | undefined) =>
			plan("remix", {
				read,
				dependencies: { "react-router": "^8.5.0", "@react-router/dev": "^8.5.0" },
			}).note;
		it("listed in a config-based routes.ts, the env from cloudflare:workers", () => {
			const note = rr(
				files({
					"app/routes.ts": 'export default [index("routes/home.tsx")] satisfies RouteConfig;',
				}),
			);
			expect(note).toContain("app/routes/api.health.ts");
			expect(note).toContain(
				"export const loader = ({ request }: { request: Request }) => handleHealth(request, env);",
			);
			expect(note).toContain('import { env } from "cloudflare:workers";');
			expect(note).toContain(
				'then list it in app/routes.ts: `route("api/health", "routes/api.health.ts")`',
			);
		});
		it("no listing when routes.ts uses flatRoutes(), in its rootDirectory", () => {
			const flat = rr(
				files({ "app/routes.ts": "export default flatRoutes() satisfies RouteConfig;" }),
			);
			expect(flat).toContain("app/routes/api.health.ts");
			expect(flat).not.toContain("list it in");
			const pages = rr(
				files({ "app/routes.js": 'export default flatRoutes({ rootDirectory: "pages" });' }),
			);
			expect(pages).toContain("app/pages/api.health.ts");
		});
		it("under react-router.config's appDirectory", () => {
			const note = rr(
				files({
					"react-router.config.ts": 'export default { appDirectory: "src/app", ssr: true };',
					"src/app/routes.ts": 'export default [route("/", "routes/home.tsx")];',
				}),
			);
			expect(note).toContain("src/app/routes/api.health.ts");
			expect(note).toContain(
				'list it in src/app/routes.ts: `route("api/health", "routes/api.health.ts")`',
			);
		});
	});
	it("a SvelteKit endpoint, a RedwoodSDK route (both Vite apps) and a Nuxt server route, by their packages", () => {
		const svelte = plan("vite", { dependencies: { "@sveltejs/kit": "^2.50.0", vite: "^8.0.0" } });
		expect(svelte.note).toContain("src/routes/api/health/+server.ts");
		expect(svelte.note).toContain(
			"export const GET = ({ request, platform }) => handleHealth(request, platform?.env ?? {});",
		);
		const nuxt = plan("worker", { dependencies: { nuxt: "^4.2.0" }, options: '{ binding: "D1" }' });
		expect(nuxt.note).toContain("server/routes/api/health.get.ts");
		expect(nuxt.note).toContain(
			'export default defineEventHandler((event) => handleHealth(toWebRequest(event), event.context.cloudflare.env, { binding: "D1" }));',
		);
		const redwood = plan("vite", { dependencies: { rwsdk: "^1.0.0", vite: "^7.0.0" } });
		expect(redwood.note).toContain(
			'route("/api/health", ({ request }) => handleHealth(request, env))',
		);
		expect(redwood.note).toContain('import { env } from "cloudflare:workers";');
		// Without these packages, a Vite app gets the plain fetch-handler lines.
		expect(plan("vite").note).toContain("in your fetch handler");
	});
	it("a TanStack Start server route, its router package and the cloudflare:workers env", () => {
		const react = plan("vite", {
			main: "@tanstack/react-start/server-entry",
			dependencies: { "@tanstack/react-start": "^1.169.0", "@cloudflare/vite-plugin": "^1.64.0" },
		});
		expect(react.file).toBeUndefined();
		expect(react.note).toContain("src/routes/api/health.ts");
		expect(react.note).toContain(
			'export const Route = createFileRoute("/api/health")({ server: { handlers: { GET: ({ request }) => handleHealth(request, env) } } });',
		);
		expect(react.note).toContain('import { createFileRoute } from "@tanstack/react-router";');
		expect(react.note).toContain('import { env } from "cloudflare:workers";');
		const solid = plan("vite", { dependencies: { "@tanstack/solid-start": "^1.169.0" } });
		expect(solid.note).toContain('import { createFileRoute } from "@tanstack/solid-router";');
	});
	it("a Hono app built by Vite (the Cloudflare Vite plugin) gets the Hono route in its main", () => {
		const hono = plan("vite", {
			main: "src/index.tsx",
			dependencies: { hono: "^4.9.0", vite: "^7.1.0", "@cloudflare/vite-plugin": "^1.13.0" },
		});
		expect(hono.file).toBe("src/index.tsx");
		expect(
			hono.edit?.('import { Hono } from "hono";\nconst app = new Hono();\nexport default app;\n'),
		).toContain('app.get("/api/health", healthRoute());');
		// A Vite app without Hono, main or not, keeps the fetch-handler advice.
		expect(plan("vite", { main: "src/index.ts" }).file).toBeUndefined();
	});
	it("a Pages Function in a Pages project without a framework, where there is no fetch handler", () => {
		const pages = plan("worker", { pages: true, options: '{ binding: "D1" }' });
		expect(pages.note).toContain("as a Pages Function: functions/api/health.ts");
		expect(pages.note).toContain(
			'export const onRequestGet = ({ request, env }: { request: Request; env: object }) => handleHealth(request, env, { binding: "D1" });',
		);
		// A framework's own route comes first on Pages too (SvelteKit's platform.env is Pages' env).
		expect(
			plan("vite", { pages: true, dependencies: { "@sveltejs/kit": "^2.0.0" } }).note,
		).toContain("+server.ts");
	});
	it("a Next.js route only with @opennextjs/cloudflare, which workers-pipeline/health/next imports", () => {
		const opennext = plan("next", { dependencies: { next: "16", "@opennextjs/cloudflare": "1" } });
		expect(opennext.file).toBe("app/api/health/route.js");
		const bare = plan("next", { dependencies: { next: "16" } });
		expect(bare.file).toBeUndefined();
		expect(bare.note).toContain("install it (npm i @opennextjs/cloudflare");
		const pages = plan("next", {
			dependencies: { next: "15", "@cloudflare/next-on-pages": "1" },
			exists: (rel: string) => rel === "src/app" || rel === "tsconfig.json",
		});
		expect(pages.file).toBeUndefined();
		expect(pages.note).toContain("src/app/api/health/route.ts");
		expect(pages.note).toContain("handleHealth(request, getRequestContext().env)");
	});
	it("a plain Worker's fetch handler", () => {
		expect(plan("worker").note).toContain(
			'if (new URL(request.url).pathname === "/api/health") return handleHealth(request, env);',
		);
	});
});

describe("renderHealthOptions()", () => {
	const db = (binding: string, migrationsTable = "d1_migrations") => ({ binding, migrationsTable });
	it("writes nothing for the handler's defaults", () => {
		expect(renderHealthOptions([db("DB"), db("DB")])).toEqual({ options: "" });
		expect(renderHealthOptions([])).toEqual({ options: "" });
	});
	it("names a binding other than DB and a ledger other than wrangler's default", () => {
		expect(renderHealthOptions([db("DATABASE"), db("DATABASE")]).options).toBe(
			'{ binding: "DATABASE" }',
		);
		expect(renderHealthOptions([db("DB", "app ledger")]).options).toBe(
			'{ migrationsTable: "app ledger" }',
		);
	});
	it("writes no guess when the environments differ, and says so", () => {
		const out = renderHealthOptions([db("DB"), db("PROD_DB")]);
		expect(out.options).toBe("");
		expect(out.note).toMatch(/differ \(DB, PROD_DB\)/);
	});
});

describe("init: the health route names the app's own D1 binding", () => {
	afterAll(removeProjects);
	it("writes healthRoute({ binding, migrationsTable }) for a Hono app whose binding is not DB", async () => {
		const dir = makeProject({
			prefix: "wp-init-binding-",
			files: {
				"package.json": JSON.stringify({
					name: "api",
					dependencies: { hono: "^4" },
					scripts: { "cf-typegen": "wrangler types --env-interface CloudflareBindings" },
				}),
				"package-lock.json": "{}",
				"wrangler.toml": [
					'name = "api"',
					'main = "src/index.ts"',
					"[[d1_databases]]",
					'binding = "DATABASE"',
					'database_id = "x"',
					'migrations_table = "ledger"',
					"[env.production]",
					"[[env.production.d1_databases]]",
					'binding = "DATABASE"',
					'database_id = "y"',
					'migrations_table = "ledger"',
					"",
				].join("\n"),
				"src/index.ts":
					'import { Hono } from "hono";\nconst app = new Hono();\nexport default app;\n',
				"migrations/0001_init.sql": "CREATE TABLE notes (id INTEGER PRIMARY KEY);\n",
				"node_modules/workers-pipeline/package.json": JSON.stringify({
					name: "workers-pipeline",
					exports: { "./health/hono": "./h.js", "./package.json": "./package.json" },
				}),
			},
		});
		const init = await cli(["init", "--json"], dir);
		expect(init.code, init.stdout + init.stderr).toBe(0);
		expect(readFileSync(path.join(dir, "src/index.ts"), "utf8")).toContain(
			'app.get("/api/health", healthRoute({ binding: "DATABASE", migrationsTable: "ledger" }));',
		);
		// It changed the wrangler config: the generated Env types are regenerated with the app's script.
		const next = nextStepsOf(init.stdout);
		expect(next).toContain(
			"Run `npm run cf-typegen` so your generated Env types have CF_VERSION_METADATA, then commit them.",
		);
	});
});

describe("init: which command regenerates the Env types", () => {
	afterAll(removeProjects);
	const nextSteps = async (files: Record<string, string>) => {
		const dir = makeProject({
			prefix: "wp-init-typegen-",
			files: {
				"package-lock.json": "{}",
				"wrangler.jsonc": `{ "name": "app", "main": "src/index.ts", "d1_databases": [{ "binding": "DB", "database_id": "x" }] }\n`,
				"src/index.ts": "export default { fetch() { return new Response('ok'); } };\n",
				"migrations/0001_init.sql": "CREATE TABLE notes (id INTEGER PRIMARY KEY);\n",
				...files,
			},
		});
		const init = await cli(["init", "--json"], dir);
		expect(init.code, init.stdout + init.stderr).toBe(0);
		return nextStepsOf(init.stdout);
	};
	const advice = (command: string) =>
		`Run \`${command}\` so your generated Env types have CF_VERSION_METADATA, then commit them.`;
	const generated =
		"/* eslint-disable */\n// Generated by Wrangler by running `wrangler types` (hash: 1)\ninterface Env {}\n";

	it("names the script that writes them, never one that only checks them (SvelteKit's build)", async () => {
		const next = await nextSteps({
			"package.json": JSON.stringify({
				name: "app",
				scripts: { build: "wrangler types --check && vite build", gen: "wrangler types" },
			}),
		});
		expect(next).toContain(advice("npm run gen"));
		expect(next?.join("\n")).not.toContain("npm run build");
	});

	it("names wrangler types itself for committed generated types and no script", async () => {
		const next = await nextSteps({
			"package.json": JSON.stringify({ name: "app" }),
			"worker-configuration.d.ts": generated,
		});
		expect(next).toContain(advice("npx wrangler types"));
	});

	it("says nothing of type generation for an app with neither", async () => {
		const next = await nextSteps({ "package.json": JSON.stringify({ name: "app" }) });
		expect(next?.join("\n")).not.toContain("generated Env types");
	});
});

describe("planAssetsIgnore(): an Astro Worker built inside its assets directory", () => {
	afterAll(removeProjects);
	const astro12 = {
		framework: "astro" as const,
		configDir: "/app",
		main: "./dist/_worker.js/index.js",
	};
	it("lists _worker.js and _routes.json, keeping the team's own lines", () => {
		expect(planAssetsIgnore({ ...astro12, assetsDirectory: "./dist", existing: undefined })).toBe(
			"_worker.js\n_routes.json\n",
		);
		expect(
			planAssetsIgnore({ ...astro12, assetsDirectory: "dist", existing: "*.map\n/_worker.js" }),
		).toBe("*.map\n/_worker.js\n_routes.json\n");
		expect(
			planAssetsIgnore({
				...astro12,
				assetsDirectory: "dist",
				existing: "_routes.json\n_worker.js\n",
			}),
		).toBeUndefined();
	});
	it("leaves other layouts alone: main outside the assets, no assets, not Astro", () => {
		const none = { existing: undefined, configDir: "/app" };
		expect(
			planAssetsIgnore({
				...none,
				framework: "astro",
				main: "src/worker.ts",
				assetsDirectory: "./dist",
			}),
		).toBeUndefined();
		expect(
			planAssetsIgnore({ ...astro12, assetsDirectory: undefined, existing: undefined }),
		).toBeUndefined();
		expect(
			planAssetsIgnore({
				...astro12,
				framework: "vite",
				assetsDirectory: "./dist",
				existing: undefined,
			}),
		).toBeUndefined();
	});
	it("init writes public/.assetsignore in an Astro app on @astrojs/cloudflare 12, once", async () => {
		const dir = makeProject({
			prefix: "wp-init-astro-",
			files: {
				"package.json": JSON.stringify({
					name: "site",
					dependencies: { astro: "^5.13.0", "@astrojs/cloudflare": "^12.6.0" },
				}),
				"package-lock.json": "{}",
				"wrangler.jsonc":
					'{\n\t"name": "site",\n\t"main": "./dist/_worker.js/index.js",\n\t"assets": { "binding": "ASSETS", "directory": "./dist" },\n\t"d1_databases": [{ "binding": "DB", "database_id": "x" }]\n}\n',
				"migrations/0001_init.sql": "CREATE TABLE notes (id INTEGER PRIMARY KEY);\n",
			},
		});
		const init = await cli(["init", "--json"], dir);
		expect(init.code, init.stdout + init.stderr).toBe(0);
		expect(readFileSync(path.join(dir, "public/.assetsignore"), "utf8")).toBe(
			"_worker.js\n_routes.json\n",
		);
		const again = await cli(["init", "--json"], dir);
		const files = (
			JSON.parse(again.stdout) as {
				steps: { data: { files: { path: string; action: string }[] } }[];
			}
		).steps[0]?.data.files;
		expect(files?.find((f) => f.path === "public/.assetsignore")).toBeUndefined();
	});
});

describe("init: a Cloudflare Vite plugin app with environments", () => {
	afterAll(removeProjects);
	it("says to build for the environment it deploys", async () => {
		const dir = makeProject({
			prefix: "wp-init-vite-plugin-",
			files: {
				"package.json": JSON.stringify({
					name: "app",
					devDependencies: { vite: "^7.1.0", "@cloudflare/vite-plugin": "^1.13.0" },
				}),
				"package-lock.json": "{}",
				"wrangler.jsonc":
					'{ "name": "app", "main": "src/index.ts", "env": { "production": { "d1_databases": [{ "binding": "DB", "database_id": "p" }] } }, "d1_databases": [{ "binding": "DB", "database_id": "x" }] }\n',
				"migrations/0001_init.sql": "CREATE TABLE notes (id INTEGER PRIMARY KEY);\n",
			},
		});
		const init = await cli(["init", "--json"], dir);
		expect(init.code, init.stdout + init.stderr).toBe(0);
		const next = nextStepsOf(init.stdout);
		expect(next?.join("\n")).toContain(
			"`npx workers-pipeline build --env production`, then `deploy --env production`",
		);
	});
});

describe("planAcknowledgements()", () => {
	it("should group by code with files relative to the migrations dir, never acknowledging what init fixes", () => {
		const acks = planAcknowledgements(
			[
				{ code: "D1_DESTRUCTIVE", severity: "warning", message: "", file: "drizzle/0002_b.sql" },
				{ code: "D1_DESTRUCTIVE", severity: "warning", message: "", file: "drizzle/0001_a.sql" },
				{
					code: "CATALOG_DUPLICATE_NUMBER",
					severity: "error",
					message: "",
					file: "drizzle/0006_x.sql",
				},
				{ code: "SNAPSHOT_MISSING", severity: "error", message: "", file: "drizzle.schema.sql" },
				{ code: "REPLAY_FAILED", severity: "error", message: "", file: "drizzle/0007_y.sql" },
			],
			{ dirs: ["drizzle"], date: "2026-12-01" },
		);
		expect(acks.map((a) => [a.code, a.files])).toEqual([
			["CATALOG_DUPLICATE_NUMBER", ["0006_x.sql"]],
			["D1_DESTRUCTIVE", ["0001_a.sql", "0002_b.sql"]],
		]);
		expect(acks.every((a) => a.reason.startsWith("REVIEW: existing history at adoption"))).toBe(
			true,
		);
		expect(() => renderSettings({ naming: "drizzle-kit", acknowledge: acks })).not.toThrow();
	});
});

// The CLI in `dir`, with only PATH in its environment.
const cli = (argv: string[], dir: string) => captureCli([...argv, "--cwd", dir], { cwd: dir });
/** The next steps an `init --json` run printed. */
const nextStepsOf = (stdout: string) =>
	(JSON.parse(stdout) as { steps: { data: { next: string[] } }[] }).steps[0]?.data.next;

interface Json {
	ok: boolean;
	findings: { code: string; acknowledged?: string; severity: string; file: string | null }[];
}

// Every real set in the corpus: init acknowledges what is there, then lint and migration-test are
// green, nothing is "unused", and the team's NEXT migration in its own layout needs nothing new.
const sets = corpusPresent
	? readdirSync(corpusDir, { withFileTypes: true })
			.filter((e) => e.isDirectory())
			.map((e) => e.name)
			.sort()
	: [];
// These two do not replay as wrangler orders them (SOURCES.md): init must say so, not hide it.
const NOT_REPLAYING = new Set(["nkuntz1934__matrix-workers", "openRin__Rin"]);

function corpusProject(set: string): { dir: string; nested: boolean } {
	const dir = mkdtempSync(path.join(tmpdir(), "wp-init-"));
	temps.push(dir);
	const nested = readdirSync(path.join(corpusDir, set)).every((n) => !n.endsWith(".sql"));
	cpSync(path.join(corpusDir, set), path.join(dir, "migrations"), { recursive: true });
	writeFileSync(
		path.join(dir, "wrangler.jsonc"),
		`// ${set}\n${JSON.stringify(
			{
				name: "corpus",
				compatibility_date: "2026-06-01",
				d1_databases: [
					{
						binding: "DB",
						database_name: "corpus",
						migrations_dir: "migrations",
						...(nested ? { migrations_pattern: "migrations/*/migration.sql" } : {}),
					},
				],
			},
			null,
			"\t",
		)}\n`,
	);
	writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "corpus" }));
	return { dir, nested };
}

describe.skipIf(!corpusPresent)("init on the real histories of the corpus", () => {
	it.each(sets.filter((s) => !NOT_REPLAYING.has(s)))(
		"%s: green after init, and for its next migration",
		async (set) => {
			const { dir, nested } = corpusProject(set);
			const before = await cli(["migration-test", "--json"], dir);
			const init = await cli(["init", "--json"], dir);
			expect(init.code).toBe(0);
			for (const command of ["lint", "migration-test"]) {
				const run = await cli([command, "--json"], dir);
				const report = JSON.parse(run.stdout) as Json;
				expect(report.findings.filter((f) => !f.acknowledged)).toEqual([]);
				expect(run.code).toBe(0);
			}
			// What init acknowledged is exactly what was there (not the snapshot: it writes that)...
			const settings = parseJsonc(
				readFileSync(path.join(dir, "workers-pipeline.jsonc"), "utf8"),
			) as {
				migrations: { naming: string; acknowledge: { code: string }[] };
			};
			const was = (JSON.parse(before.stdout) as Json).findings
				.map((f) => f.code)
				.filter((code) => code !== "SNAPSHOT_MISSING");
			// ...less the bad names a naming preset for the team's tool now accepts.
			const expected = [...new Set(was)].filter(
				(code) => code !== "CATALOG_BAD_NAME" || settings.migrations.naming === "strict",
			);
			expect(settings.migrations.acknowledge.map((a) => a.code).sort()).toEqual(expected.sort());

			// The next migration, named as the team's tool names it.
			const names = readdirSync(path.join(dir, "migrations")).filter(
				(n) => !n.endsWith(".toml") && n !== "meta",
			);
			const next = nested
				? "20991231235959_add_audit_log/migration.sql"
				: settings.migrations.naming === "timestamp"
					? "20991231235959_add_audit_log.sql"
					: settings.migrations.naming === "wrangler"
						? // `wrangler d1 migrations create DB "add-audit log"` (spaces made underscores)
							`${String(names.length + 100).padStart(4, "0")}_add-audit_log.sql`
						: `${String(names.length + 100).padStart(4, "0")}_add_audit_log.sql`;
			mkdirSync(path.dirname(path.join(dir, "migrations", next)), { recursive: true });
			writeFileSync(
				path.join(dir, "migrations", next),
				"CREATE TABLE audit_log_next (id INTEGER PRIMARY KEY, at TEXT NOT NULL);\n",
			);
			await cli(["migration-test", "--update-snapshot"], dir);
			const after = JSON.parse((await cli(["lint", "--json"], dir)).stdout) as Json;
			expect(
				after.findings.filter((f) => !f.acknowledged && f.code !== "CATALOG_NUMBER_GAP"),
			).toEqual([]);
		},
	);

	it.each([...NOT_REPLAYING].filter((s) => sets.includes(s)))(
		"%s: init says the history does not replay (exit 1)",
		async (set) => {
			const { dir } = corpusProject(set);
			const init = await cli(["init", "--json"], dir);
			expect(init.code).toBe(1);
			const report = JSON.parse(init.stdout) as Json;
			expect(report.findings.map((f) => f.code)).toContain("REPLAY_FAILED");
			expect(existsSync(path.join(dir, "workers-pipeline.jsonc"))).toBe(true);
		},
	);
});

describe("packageExports()", () => {
	afterAll(removeProjects);
	const installed = (exports: Record<string, string>) =>
		JSON.stringify({ name: "workers-pipeline", exports });

	it("finds the package where a workspace hoisted it, above the app", () => {
		const dir = makeProject({
			prefix: "wp-init-hoisted-",
			files: {
				"package.json": JSON.stringify({ workspaces: ["apps/*"] }),
				"apps/api/package.json": "{}",
				"node_modules/workers-pipeline/package.json": installed({
					"./health/hono": "./h.js",
					"./package.json": "./package.json",
				}),
			},
		});
		expect(packageExports(path.join(dir, "apps/api"), "./health/hono")).toBe(true);
		expect(packageExports(path.join(dir, "apps/api"), "./health/next")).toBe(false);
	});

	it("reads a version whose exports omit ./package.json", () => {
		const dir = makeProject({
			prefix: "wp-init-old-",
			files: {
				"package.json": "{}",
				"node_modules/workers-pipeline/package.json": installed({ "./health": "./h.js" }),
			},
		});
		expect(packageExports(dir, "./health")).toBe(true);
		expect(packageExports(dir, "./health/hono")).toBe(false);
	});
});

describe("init: the files it writes pass the project's own format check", () => {
	afterAll(removeProjects);
	// The real biome of this repository, linked as the app's devDependency would install it.
	const BIOME = path.join(REPO, "node_modules/@biomejs/biome/bin/biome");
	const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

	it("formats them with the project's biome (two spaces here), so its format check is green after init", async () => {
		const dir = makeProject({
			prefix: "wp-init-format-",
			files: {
				// The project's own files already in its style; only init's writes can fail the check.
				"package.json": json({ name: "app", private: true }),
				"package-lock.json": "{}\n",
				"biome.json": json({ formatter: { indentStyle: "space", indentWidth: 2 } }),
				"wrangler.jsonc": JSON.stringify({
					name: "app",
					main: "src/index.ts",
					d1_databases: [{ binding: "DB", database_id: "x" }],
				}),
				"src/index.ts": "export default {};\n",
				"migrations/0001_init.sql": "CREATE TABLE notes (id INTEGER PRIMARY KEY);\n",
				"node_modules/.bin/biome": { symlink: BIOME },
			},
		});
		const init = await cli(["init", "--json"], dir);
		expect(init.code).toBe(0);
		const settings = readFileSync(path.join(dir, "workers-pipeline.jsonc"), "utf8");
		expect(settings).toMatch(/^ {2}"migrations": \{$/m);
		expect(settings).not.toMatch(/^\t/m);
		const check = spawnSync(BIOME, ["format", "--colors=off", "."], { cwd: dir, encoding: "utf8" });
		expect(check.stderr + check.stdout).not.toMatch(/Formatter would have printed/);
		expect(check.status).toBe(0);
	});
});

describe("init: idempotent, never overwrites without --force", () => {
	function nextApp(): string {
		const dir = mkdtempSync(path.join(tmpdir(), "wp-init-next-"));
		temps.push(dir);
		const files: Record<string, string> = {
			"package.json": JSON.stringify({
				name: "app",
				dependencies: { next: "16", "@opennextjs/cloudflare": "^1.19.0" },
			}),
			// The installed package declares the Next adapter, so init may import it.
			"node_modules/workers-pipeline/package.json": JSON.stringify({
				name: "workers-pipeline",
				exports: { "./health/next": "./dist/ci/health/next.js" },
			}),
			"tsconfig.json": "{}",
			"src/app/page.tsx": "export default function Page() { return null; }\n",
			"migrations/0001_init.sql": "CREATE TABLE t (id INTEGER PRIMARY KEY);\n",
			"wrangler.jsonc": `{\n\t// the app\n\t"name": "app",\n\t"d1_databases": [{ "binding": "DB", "migrations_dir": "migrations" }],\n}\n`,
		};
		for (const [rel, text] of Object.entries(files)) {
			mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
			writeFileSync(path.join(dir, rel), text);
		}
		return dir;
	}
	const actions = (stdout: string) =>
		Object.fromEntries(
			(
				JSON.parse(stdout) as { steps: { data: { files: { path: string; action: string }[] } }[] }
			).steps[0]?.data.files.map((f) => [f.path, f.action]) ?? [],
		);

	it("should write each file once, keep them all on a second run, and rewrite only with --force", async () => {
		const dir = nextApp();
		const first = await cli(["init", "--json"], dir);
		expect(first.code).toBe(0);
		expect(actions(first.stdout)).toEqual({
			"workers-pipeline.jsonc": "created",
			"src/app/api/health/route.ts": "created",
			"wrangler.jsonc": "updated",
			".github/workflows/workers-pipeline.yml": "created",
			"migrations.schema.sql": "created",
		});
		const route = path.join(dir, "src/app/api/health/route.ts");
		expect(readFileSync(route, "utf8")).toContain('from "workers-pipeline/health/next"');
		writeFileSync(route, "// our own health route\n");
		const second = await cli(["init", "--json"], dir);
		expect(Object.values(actions(second.stdout))).toEqual(["kept", "kept", "kept", "kept", "kept"]);
		expect(readFileSync(route, "utf8")).toBe("// our own health route\n");
		expect(readFileSync(path.join(dir, "wrangler.jsonc"), "utf8")).toContain("// the app");
		const forced = await cli(["init", "--force", "--json"], dir);
		expect(actions(forced.stdout)["src/app/api/health/route.ts"]).toBe("overwritten");
		expect(readFileSync(route, "utf8")).toContain("createNextHealthRoute");
	});

	it("should set up a Worker without D1 (no history, no snapshot)", async () => {
		const dir = nextApp();
		writeFileSync(path.join(dir, "wrangler.jsonc"), '{ "name": "app" }\n');
		const run = await cli(["init", "--json"], dir);
		expect(run.code).toBe(0);
		expect(Object.keys(actions(run.stdout))).not.toContain("migrations.schema.sql");
	});
});

describe("init: shapes beyond one app with one binding", () => {
	function write(dir: string, files: Record<string, string>): void {
		for (const [rel, text] of Object.entries(files)) {
			mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
			writeFileSync(path.join(dir, rel), text);
		}
	}
	const files = (stdout: string) =>
		(
			JSON.parse(stdout) as {
				steps: { data: { files: { path: string; action: string }[]; next: string[] } }[];
			}
		).steps[0]?.data;

	/** A git repository whose npm workspace holds one app, apps/api, with a drizzle migration. */
	const monorepo = () => {
		const dir = mkdtempSync(path.join(tmpdir(), "wp-init-mono-"));
		temps.push(dir);
		write(dir, {
			"package.json": JSON.stringify({ private: true, workspaces: ["apps/*"] }),
			"package-lock.json": "{}",
			"apps/api/package.json": JSON.stringify({ name: "api" }),
			"apps/api/wrangler.jsonc":
				'{ "name": "api", "d1_databases": [{ "binding": "DB", "migrations_dir": "drizzle" }] }\n',
			"apps/api/drizzle/0000_init.sql": "CREATE TABLE t (id INTEGER PRIMARY KEY);\n",
		});
		spawnSync("git", ["init", "-q", dir]);
		return dir;
	};

	it("should write a monorepo app's workflow where GitHub reads it, calling the module on the app", async () => {
		const dir = monorepo();
		const app = path.join(dir, "apps/api");
		const run = await cli(["init", "--json"], app);
		expect(run.code).toBe(0);
		const data = files(run.stdout);
		const workflow = "../../.github/workflows/workers-pipeline-apps-api.yml";
		expect(data?.files.find((f) => f.path === workflow)?.action).toBe("created");
		expect(existsSync(path.join(app, ".github"))).toBe(false);
		// The workspace's lockfile and packages are at the root: the module gets it, and the app in it.
		expect(readFileSync(path.join(app, workflow), "utf8")).toContain(
			"call: --source . --app-dir apps/api ci\n",
		);
		expect(data?.next.join("\n")).not.toMatch(
			/lockfile is in its workspace|migrations are outside/,
		);
		// Migrations elsewhere in the repository are in what the module is given...
		writeFileSync(
			path.join(app, "wrangler.jsonc"),
			'{ "name": "api", "d1_databases": [{ "binding": "DB", "migrations_dir": "../../db" }] }\n',
		);
		write(dir, { "db/0000_init.sql": "CREATE TABLE t (id INTEGER PRIMARY KEY);\n" });
		const inside = files((await cli(["init", "--force", "--json"], app)).stdout);
		expect(inside?.next.join("\n")).not.toMatch(/migrations are outside/);
	});

	// Paths print relative to where the user ran init, as tools do (--cwd names the app).
	it("should print the paths it wrote relative to where it was run, not to the app", async () => {
		const dir = monorepo();
		const run = await captureCli(["init", "--cwd", "apps/api"], { cwd: dir });
		expect(run.code).toBe(0);
		const shown = run.stdout
			.split("\n")
			.map((line) => /^\s+(?:created|updated|kept|overwritten)\s+(\S+)/.exec(line)?.[1])
			.filter((p) => p !== undefined);
		expect(shown).toContain(".github/workflows/workers-pipeline-apps-api.yml");
		expect(shown).toContain("apps/api/workers-pipeline.jsonc");
		expect(shown.filter((p) => p.startsWith(".."))).toEqual([]);
		for (const p of shown) expect(existsSync(path.join(dir, p)), p).toBe(true);
	});

	it("should give the module the directory that also holds migrations kept elsewhere in the repository", async () => {
		const dir = mkdtempSync(path.join(tmpdir(), "wp-init-sub-"));
		temps.push(dir);
		write(dir, {
			"apps/api/package.json": JSON.stringify({ name: "api" }),
			"apps/api/package-lock.json": "{}",
			"apps/api/wrangler.jsonc":
				'{ "name": "api", "d1_databases": [{ "binding": "DB", "migrations_dir": "../../db" }] }\n',
			"db/0000_init.sql": "CREATE TABLE t (id INTEGER PRIMARY KEY);\n",
		});
		spawnSync("git", ["init", "-q", dir]);
		const app = path.join(dir, "apps/api");
		const run = await cli(["init", "--json"], app);
		expect(run.code).toBe(0);
		const workflow = "../../.github/workflows/workers-pipeline-apps-api.yml";
		// An app with its own lockfile, its migrations in the repository's db/: both go in.
		expect(readFileSync(path.join(app, workflow), "utf8")).toContain(
			"call: --source . --app-dir apps/api ci\n",
		);
		expect(files(run.stdout)?.next.join("\n")).not.toMatch(/outside/);
		// Migrations beside the app (apps/db): the nearest directory holding both.
		writeFileSync(
			path.join(app, "wrangler.jsonc"),
			'{ "name": "api", "d1_databases": [{ "binding": "DB", "migrations_dir": "../db" }] }\n',
		);
		write(dir, { "apps/db/0000_init.sql": "CREATE TABLE t (id INTEGER PRIMARY KEY);\n" });
		await cli(["init", "--force", "--json"], app);
		expect(readFileSync(path.join(app, workflow), "utf8")).toContain(
			"call: --source apps --app-dir api ci\n",
		);
	});

	it("planWorkflowSource(): the app alone, its workspace, widened for migrations; outside the repository named", () => {
		const plan = (root: string, migrationDirs: string[], workspaceRoot?: string) =>
			planWorkflowSource({ top: "/repo", root, workspaceRoot, migrationDirs });
		expect(plan("/repo", ["/repo/migrations"])).toEqual({
			source: ".",
			appDir: undefined,
			outside: [],
		});
		expect(plan("/repo/apps/api", ["/repo/apps/api/drizzle"])).toEqual({
			source: "apps/api",
			appDir: undefined,
			outside: [],
		});
		expect(plan("/repo/apps/api", ["/repo/apps/api/drizzle"], "/repo")).toEqual({
			source: ".",
			appDir: "apps/api",
			outside: [],
		});
		expect(plan("/repo/apps/api", ["/repo/packages/db/migrations"])).toEqual({
			source: ".",
			appDir: "apps/api",
			outside: [],
		});
		expect(plan("/repo/apps/api", ["/elsewhere/migrations"])).toEqual({
			source: "apps/api",
			appDir: undefined,
			outside: ["/elsewhere/migrations"],
		});
	});

	it("should report, never acknowledge, a set the config finds no migration in (a missing migrations_pattern)", async () => {
		const dir = mkdtempSync(path.join(tmpdir(), "wp-init-pattern-"));
		temps.push(dir);
		write(dir, {
			"package.json": JSON.stringify({ name: "app" }),
			"wrangler.jsonc":
				'{ "name": "app", "d1_databases": [{ "binding": "DB", "migrations_dir": "drizzle" }] }\n',
			"drizzle/20250101000000_init/migration.sql": "CREATE TABLE t (id INTEGER PRIMARY KEY);\n",
		});
		const run = await cli(["init", "--json"], dir);
		const report = JSON.parse(run.stdout) as { findings: { code: string; message: string }[] };
		expect(report.findings.map((f) => f.code)).toEqual(["CATALOG_EMPTY"]);
		expect(report.findings[0]?.message).toContain(
			'"migrations_pattern": "drizzle/*/migration.sql"',
		);
		const settings = parseJsonc(readFileSync(path.join(dir, "workers-pipeline.jsonc"), "utf8"));
		expect(settings.migrations.acknowledge).toEqual([]);
	});

	it("should adopt every D1 binding, each set with its own snapshot, wherever its migrations are", async () => {
		const dir = mkdtempSync(path.join(tmpdir(), "wp-init-bindings-"));
		temps.push(dir);
		write(dir, {
			"package.json": JSON.stringify({ name: "app" }),
			"app/wrangler.json": `{
	"$schema": "../node_modules/wrangler/config-schema.json",
	// two databases, both outside the config's directory
	"name": "app",
	"d1_databases": [
		{ "binding": "DB", "migrations_dir": "../db/migrations", "migrations_pattern": "../db/migrations/*/migration.sql", "preview_database_id": "p" },
		{ "binding": "EVENTS", "migrations_dir": "../events", "migrations_table": "drizzle_migrations" },
	],
}
`,
			"db/migrations/migration_lock.toml": 'provider = "sqlite"\n',
			"db/migrations/20240101120000_init/migration.sql":
				'CREATE TABLE "User" ("id" INTEGER NOT NULL PRIMARY KEY);\n',
			"events/0000_events.sql": "CREATE TABLE events (id INTEGER PRIMARY KEY);\n",
		});
		const run = await cli(["init", "--config", "app/wrangler.json", "--json"], dir);
		expect(run.code).toBe(0);
		const actions = Object.fromEntries(
			files(run.stdout)?.files.map((f) => [f.path, f.action]) ?? [],
		);
		expect(actions["db/migrations.schema.sql"]).toBe("created");
		expect(actions["events.schema.sql"]).toBe("created");
		expect(readFileSync(path.join(dir, "events.schema.sql"), "utf8")).toContain("events");
		// Each set keeps its own tool's naming, so the next migration of each needs nothing new.
		const settings = parseJsonc(readFileSync(path.join(dir, "workers-pipeline.jsonc"), "utf8"));
		expect(settings.migrations).toEqual({
			naming: { "db/migrations": "prisma", events: "wrangler" },
			acknowledge: [],
		});
		write(dir, {
			"db/migrations/20240301120000_add_posts/migration.sql":
				'CREATE TABLE "Post" ("id" INTEGER NOT NULL PRIMARY KEY);\n',
			"events/0001_more_events.sql": "CREATE TABLE more_events (id INTEGER PRIMARY KEY);\n",
		});
		const lint = await cli(["lint", "--config", "app/wrangler.json", "--json"], dir);
		expect(JSON.parse(lint.stdout).findings).toEqual([]);
		for (const binding of ["DB", "EVENTS"]) {
			await cli(
				[
					"migration-test",
					"--config",
					"app/wrangler.json",
					"--binding",
					binding,
					"--update-snapshot",
				],
				dir,
			);
			const test = await cli(
				["migration-test", "--config", "app/wrangler.json", "--binding", binding],
				dir,
			);
			expect(test.code, test.stdout).toBe(0);
		}
	});
});

describe("shownPath()", () => {
	it.each([
		["workers-pipeline.jsonc", "/w/apps/api", "/w", "apps/api/workers-pipeline.jsonc"],
		["../../.github/workflows/x.yml", "/w/apps/api", "/w", ".github/workflows/x.yml"],
		[
			"../../.github/workflows/x.yml",
			"/w/apps/api",
			"/w/apps/api",
			"../../.github/workflows/x.yml",
		],
		["wrangler.jsonc", "/w", "/w/apps", "../wrangler.jsonc"],
		[".", "/w", "/w", "."],
	])("%s in %s, from %s → %s", (rel, root, from, expected) => {
		expect(shownPath(rel, { root, from })).toBe(expected);
	});
});
