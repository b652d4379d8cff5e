// `dagger call` for the engine stand-in: loads a module's classes in-process (as the TypeScript
// runtime does), resolves contextual arguments (defaultPath + ignore) as core/modfunc.go does,
// and lets another module reach it as `dag.<name>(...)`.
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import {
	type IntrospectedArg,
	type IntrospectedModule,
	introspectModule,
	sdkEntry,
} from "../../dagger/support.ts";
import type { Engine, ModuleBinding } from "./engine.ts";

// biome-ignore lint/suspicious/noExplicitAny: the SDK and module classes are loaded dynamically.
export type Any = any;

export interface LoadedModule {
	name: string;
	/** The directory `defaultPath` resolves against (the module's context: its git root). */
	context: string;
	introspection: IntrospectedModule;
	classes: Record<string, Any>;
	object: string;
}

export const loadModule = async (opts: {
	name: string;
	src: string;
	entry: string;
	context: string;
	object: string;
}): Promise<LoadedModule> => ({
	name: opts.name,
	context: opts.context,
	object: opts.object,
	introspection: await introspectModule(opts.src, opts.name),
	classes: await import(pathToFileURL(opts.entry).href),
});

export const loadSdk = async (engine: Engine): Promise<Any> => {
	// The SDK's public connection path: a session port and token, no provisioning.
	process.env.DAGGER_SESSION_PORT = String(engine.port);
	process.env.DAGGER_SESSION_TOKEN = engine.token;
	return import(pathToFileURL(sdkEntry()).href);
};

const isDirectoryArg = (a: IntrospectedArg) => a.type?.name === "Directory";

// core/modfunc.go: a contextual Directory comes from the module's context with `ignore` as its
// exclude (LoadContextDir), an explicit one gets `ignore` through directory().withDirectory("/", …,
// exclude) (applyIgnoreOnDir).
const argValue = (sdk: Any, mod: LoadedModule, a: IntrospectedArg, given: unknown) => {
	if (given === undefined && a.defaultPath !== undefined && isDirectoryArg(a))
		return sdk.dag.host().directory(join(mod.context, a.defaultPath), { exclude: a.ignore ?? [] });
	if (given !== undefined && isDirectoryArg(a) && a.ignore?.length)
		return sdk.dag.directory().withDirectory("/", given, { exclude: a.ignore });
	if (given === undefined && a.defaultValue !== undefined)
		return JSON.parse(String(a.defaultValue));
	return given;
};

const positional = (
	sdk: Any,
	mod: LoadedModule,
	args: Record<string, IntrospectedArg>,
	given: Record<string, unknown>,
) => Object.values(args).map((a) => argValue(sdk, mod, a, given[a.name]));

/** Constructs the module's object the way the engine does for `dagger call [ctor flags] <fn>`. */
export const construct = (sdk: Any, mod: LoadedModule, ctor: Record<string, unknown> = {}): Any => {
	const obj = mod.introspection.objects[mod.object];
	const Cls = mod.classes[mod.object];
	return new Cls(...positional(sdk, mod, obj?._constructor?.arguments ?? {}, ctor));
};

/** Calls one function with named arguments; returns what the function returns (lazy objects stay lazy). */
export const callFunction = (
	sdk: Any,
	mod: LoadedModule,
	instance: Any,
	fn: string,
	args: Record<string, unknown> = {},
): Any => {
	const method = mod.introspection.objects[mod.object]?.methods[fn];
	if (!method) throw new Error(`no function ${fn} in ${mod.name}`);
	return instance[fn](...positional(sdk, mod, method.arguments, args));
};

// Object arguments arrive in a query as IDs; the runtime loads them by their declared type.
const fromQuery = (
	sdk: Any,
	args: Record<string, IntrospectedArg>,
	given: Record<string, unknown>,
) => {
	const out: Record<string, unknown> = {};
	for (const [k, v] of Object.entries(given)) {
		const type = args[k]?.type?.name;
		out[k] =
			typeof v === "string" && (type === "Directory" || type === "Secret" || type === "File")
				? sdk.dag[`load${type}FromID`](v)
				: v;
	}
	return out;
};

/** Lets another module call this one as `dag.<field>(ctorOpts).<fn>(opts)` through the engine. */
export const moduleBinding = (sdk: Any, mod: LoadedModule): ModuleBinding => ({
	construct: async (args) => {
		const obj = mod.introspection.objects[mod.object];
		const instance = construct(sdk, mod, fromQuery(sdk, obj?._constructor?.arguments ?? {}, args));
		// Functions take named arguments from the caller's query.
		return new Proxy(instance, {
			get: (target, fn: string) => {
				const method = obj?.methods[fn];
				if (!method) return target[fn];
				return (a: Record<string, unknown>) =>
					callFunction(sdk, mod, target, fn, fromQuery(sdk, method.arguments, a));
			},
		});
	},
	result: async (value) => {
		const v = await value;
		return v && typeof (v as Any).id === "function" ? (v as Any).id() : v;
	},
});

/** What `dagger develop` generates in a consumer for `dag.<field>(...)`: a query-builder binding. */
export const installBinding = (
	sdk: Any,
	field: string,
	returns: Record<string, "File" | "Directory" | "scalar">,
) => {
	sdk.dag[field] = (opts: Record<string, unknown> = {}) => {
		const ctx = sdk.dag._ctx.select(field, { ...opts });
		return Object.fromEntries(
			Object.entries(returns).map(([fn, kind]) => [
				fn,
				(a: Record<string, unknown> = {}) => {
					const next = ctx.select(fn, { ...a });
					return kind === "scalar" ? next.execute() : new sdk[kind](next);
				},
			]),
		);
	};
};
