// What the module declares, read with the SDK's own introspector; what it DOES is executed by
// the engine stand-in in pipeline.test.ts.
import { beforeAll, describe, expect, it } from "vitest";
import {
	type IntrospectedArg,
	type IntrospectedModule,
	introspectModule,
	runTsc,
} from "./support.ts";

describe("typecheck", () => {
	it("compiles .dagger/src against @dagger.io/dagger 0.21.9", () => {
		const { status, output } = runTsc(".dagger/tsconfig.json");
		expect(output).toBe("");
		expect(status).toBe(0);
	});

	it("compiles the example consumer against a stub of its generated binding", () => {
		const { status, output } = runTsc("test/dagger/tsconfig.consumer.json");
		expect(output).toBe("");
		expect(status).toBe(0);
	});
});

// What `dagger call <fn> --help` will show: names, types, optionality, defaults.
type TypeRef = IntrospectedArg["type"] & { typeDef?: TypeRef };
const typeName = (t?: TypeRef): string | undefined =>
	t?.kind === "LIST_KIND"
		? `[${typeName(t.typeDef)}]`
		: (t?.name ?? t?.kind.replace("_KIND", "").toLowerCase());
const signature = (args: Record<string, IntrospectedArg>) =>
	Object.values(args).map((a) => {
		const type = typeName(a.type);
		const optional = a.isOptional || a.defaultValue !== undefined || a.defaultPath !== undefined;
		const dflt = a.defaultValue !== undefined ? ` = ${String(a.defaultValue)}` : "";
		const path = a.defaultPath !== undefined ? ` (defaultPath ${a.defaultPath})` : "";
		return `${a.name}${optional ? "?" : ""}: ${type}${dflt}${path}`;
	});

describe("introspection (the SDK's own scanner)", () => {
	let mod: IntrospectedModule;
	beforeAll(async () => {
		mod = await introspectModule();
	});

	it("exposes one object, WorkersPipeline, with the DeployStrategy enum (environments are the config's names)", () => {
		expect(Object.keys(mod.objects)).toEqual(["WorkersPipeline"]);
		expect(Object.keys(mod.enums)).toEqual(["DeployStrategy"]);
		// Member names are what `dagger call --help` lists and users type (cmd/dagger/flags.go
		// enumValue: Type() joins the member names, Set() matches them case-insensitively).
		const members = (e: string) =>
			Object.values(mod.enums[e]?.values ?? {}).map((v) => [v.name, v.value]);
		expect(members("DeployStrategy")).toEqual([
			["gradual", "gradual"],
			["immediate", "immediate"],
		]);
	});

	it("takes the app as `source` and its own pipeline code by default", () => {
		const ctor = mod.objects.WorkersPipeline?._constructor?.arguments ?? {};
		expect(signature(ctor)).toEqual([
			"source?: Directory (defaultPath /)",
			"pipeline?: Directory (defaultPath /)",
			"appDir?: string",
			"wranglerConfig?: string",
			"commit?: string",
			"actor?: string",
			"runId?: string",
			"repository?: string",
			"cloudflareApiBaseUrl?: string",
		]);
		// Secrets, VCS data, dependencies and build output never leave the caller's machine.
		expect(ctor.source?.ignore).toEqual([
			"**/.git",
			"**/.env*",
			"**/.dev.vars*",
			"**/node_modules",
			"**/.next",
			"**/.open-next",
			"**/.wrangler",
			"**/.tools",
			"**/.reports",
		]);
		expect(ctor.pipeline?.ignore).toEqual([
			"*",
			"!ci",
			"!bin",
			"!scripts",
			"!package.json",
			"!package-lock.json",
			"!tsconfig.json",
			"!tsconfig.build.json",
			"**/node_modules",
		]);
	});

	it("has exactly the functions, arguments and cache policies the CLI users type", () => {
		const methods = mod.objects.WorkersPipeline?.methods ?? {};
		const table = Object.fromEntries(
			Object.values(methods).map((fn) => [
				fn.name,
				{
					returns: fn.returnType?.name ?? fn.returnType?.kind,
					cache: fn.cache ?? "default",
					...((fn as { isCheck?: boolean }).isCheck ? { check: true } : {}),
					args: signature(fn.arguments),
				},
			]),
		);
		// No env is the top-level Worker, as in wrangler; any environment the wrangler config names.
		const cf = ["cloudflareApiToken: Secret", "cloudflareAccountId: string"];
		const env = "env?: string";
		expect(table).toEqual({
			base: { returns: "Container", cache: "default", args: [] },
			app: { returns: "Directory", cache: "default", args: [] },
			lint: { returns: "STRING_KIND", cache: "default", check: true, args: [] },
			test: { returns: "STRING_KIND", cache: "default", check: true, args: [] },
			build: {
				returns: "Directory",
				cache: "default",
				args: ["noCache?: boolean = false", env],
			},
			migrationTest: {
				returns: "File",
				cache: "default",
				check: true,
				args: [
					"dir?: string",
					env,
					"binding?: string",
					"updateSnapshot?: boolean = false",
					"parity?: boolean = false",
					"cache?: boolean = false",
					"noData?: boolean = false",
				],
			},
			ci: {
				returns: "STRING_KIND",
				cache: "default",
				args: [
					"noParity?: boolean = false",
					"noBuild?: boolean = false",
					"noCache?: boolean = false",
				],
			},
			plan: {
				returns: "STRING_KIND",
				cache: "never",
				args: [...cf, env, "binding?: string", "allowOutOfOrder?: boolean = false"],
			},
			migrate: {
				returns: "Directory",
				cache: "never",
				args: [
					...cf,
					env,
					"binding?: string",
					"dryRun?: boolean = false",
					"autoRestore?: boolean = false",
					"rehearse?: boolean = false",
					"allowOutOfOrder?: boolean = false",
					"lockTimeout?: integer",
					"lockTtl?: integer",
					"to?: string",
				],
			},
			baseline: {
				returns: "Directory",
				cache: "never",
				args: [...cf, "through: string", env, "binding?: string", "lockTimeout?: integer"],
			},
			restore: {
				returns: "Directory",
				cache: "never",
				args: [...cf, "bookmark: string", env, "binding?: string", "lockTimeout?: integer"],
			},
			deploy: {
				returns: "Directory",
				cache: "never",
				args: [
					...cf,
					env,
					"binding?: string",
					"skipMigrate?: boolean = false",
					"healthTimeout?: integer",
					"secretsFile?: Secret",
					"secretsFromEnv?: [string]",
					"secretValues?: [Secret]",
					"autoRestore?: boolean = false",
					"lockTimeout?: integer",
					"build?: Directory",
					"strategy?: DeployStrategy",
					"steps?: string",
					"healthProbes?: integer",
					"healthWindow?: integer",
				],
			},
			preview: {
				returns: "Directory",
				cache: "never",
				args: [
					"env: string",
					"pr: integer",
					"cloudflareApiToken: Secret",
					"cloudflareAccountId: string",
					"binding?: string",
					"cleanup?: boolean = false",
					"seed?: string",
					"healthUrl?: string",
					"healthTimeout?: integer",
				],
			},
			format: { returns: "STRING_KIND", cache: "default", check: true, args: [] },
			mutation: {
				returns: "Directory",
				cache: "default",
				args: ["all?: boolean = false", "since?: string"],
			},
			e2e: { returns: "STRING_KIND", cache: "default", check: true, args: [] },
			rollback: { returns: "Directory", cache: "never", args: [...cf, env, "to?: string"] },
		});
	});
});
