// Worker Previews on the loopback API: /accounts/:a/workers/workers[/:worker[/previews[/…]]] as
// real wrangler 4.164 calls them for `wrangler preview` and `wrangler preview delete`. Client
// calls and shapes follow wrangler-dist/cli.js "../deploy-helpers/src/preview/api.ts" (cli.js:184716)
// and preview.ts (cli.js:185933 runPreview, :186115 previewDelete); the resource model follows
// developers.cloudflare.com/workers/previews/ (a named Preview under the Worker, its own bindings
// and URL, "Preview URL: always serves the latest deployment").
import { randomUUID } from "node:crypto";
import { fail, ok, type Reply } from "./envelope.ts";

// Cloudflare's codes as wrangler reads them: 10007 Worker not found (isWorkerNotFoundError,
// cli.js:166418), 10025 no such Preview (PREVIEW_NOT_FOUND_ERR_CODE, cli.js:344998; runPreview's
// getPreview catch, cli.js:185975), 10222 no deployment (NO_PREVIEW_DEPLOYMENT_GET_ERR_CODE,
// cli.js:344997), 10021 validation.
const WORKER_NOT_FOUND = 10007;
const PREVIEW_NOT_FOUND = 10025;
const NO_DEPLOYMENT = 10222;
const VALIDATION_ERROR = 10021;
const SECRET_TYPES = new Set(["secret_text", "secret_key"]);

export interface PreviewBinding {
	type: string;
	[key: string]: unknown;
}

export interface PreviewDeployment {
	id: string;
	createdOn: string;
	mainModule: string;
	// Module name → source text.
	modules: Record<string, string>;
	annotations: Record<string, string>;
	// Binding name → binding (secret values only in `secretValues`).
	env: Record<string, PreviewBinding>;
	compatibilityDate?: string;
	compatibilityFlags: string[];
}

export interface WorkerPreview {
	id: string;
	name: string;
	slug: string;
	createdOn: string;
	ignoreBaseConfig: boolean;
	settings: Record<string, unknown>;
	// Oldest first.
	deployments: PreviewDeployment[];
	// deployment id → secret name → value
	secretValues: Map<string, Map<string, string>>;
}

export interface PreviewsControl {
	// The Worker's Previews, oldest first; deleted ones are gone.
	previews(worker: string): WorkerPreview[];
	// The Preview an identifier (id, slug or name) names, if it exists.
	preview(worker: string, identifier: string): WorkerPreview | undefined;
	// Every Preview ever deleted, as `<worker>/<name>`.
	deleted: string[];
	// For tests only: a secret's stored value in a deployment.
	secretValue(worker: string, name: string, deploymentId: string): string | undefined;
}

export interface PreviewsRequest {
	method: string;
	// Every path segment below /client/v4: "accounts", <account>, "workers", "workers", …
	segments: string[];
	params: URLSearchParams;
	body: Buffer;
	contentType?: string;
}

export interface PreviewsApiOptions {
	subdomain: string;
	// Whether a D1 database id exists (a deployment binding a missing one is refused, as uploads are).
	hasD1Database: (id: string) => boolean;
	// Whether the Worker exists as a script (uploaded by deploy/versions upload).
	hasScript: (worker: string) => boolean;
	// The Worker's workers.dev settings (`{enabled, previews_enabled}`) when it is a script.
	scriptSubdomain: (worker: string) => { enabled: boolean; previews_enabled: boolean } | undefined;
}

class PreviewsError extends Error {
	constructor(
		readonly status: number,
		readonly code: number,
		message: string,
	) {
		super(message);
	}
}

const json = (request: PreviewsRequest): Record<string, unknown> => {
	try {
		const parsed: unknown = JSON.parse(request.body.toString("utf8") || "{}");
		if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed))
			return parsed as Record<string, unknown>;
	} catch {
		// fall through
	}
	throw new PreviewsError(400, VALIDATION_ERROR, "The request body is not a JSON object");
};

// Preview names become DNS labels in `<preview-name>-<worker>.<subdomain>.workers.dev`
// (developers.cloudflare.com/workers/previews/, "Host type" table): lowercase, [a-z0-9-].
export const previewSlug = (name: string) =>
	name
		.toLowerCase()
		.replace(/[^a-z0-9-]+/g, "-")
		.replace(/-+/g, "-")
		.replace(/^-|-$/g, "");

/** Replaces secret values in a preview deployment's multipart `metadata.env` before it is logged. */
export function redactPreviewBody(path: string, text: string): string {
	if (!/\/workers\/workers\/[^/]+\/previews\/[^/]+\/deployments/.test(path)) return text;
	return text.replace(
		/"type":"secret_text","text":"(?:[^"\\]|\\.)*"/g,
		'"type":"secret_text","text":"[REDACTED]"',
	);
}

export function createPreviewsApi(options: PreviewsApiOptions) {
	// worker → parent created by `POST /workers/workers` (a Worker with no script yet)
	const parents = new Map<
		string,
		{ enabled: boolean; previews_enabled: boolean; createdOn: string }
	>();
	const previews = new Map<string, WorkerPreview[]>();
	const deleted: string[] = [];

	const workerExists = (worker: string) => options.hasScript(worker) || parents.has(worker);
	const subdomainOf = (worker: string) => options.scriptSubdomain(worker) ?? parents.get(worker);

	const requireWorker = (worker: string) => {
		if (!workerExists(worker))
			throw new PreviewsError(
				404,
				WORKER_NOT_FOUND,
				`workers.api.error.script_not_found: ${worker}`,
			);
	};

	// The Previews API takes an "ID, slug, or URL-encoded name" (Cloudflare API reference,
	// workers.previews.deployments.list `preview_id`); wrangler passes the name (cli.js:184730).
	const find = (worker: string, identifier: string) =>
		(previews.get(worker) ?? []).find(
			(p) => p.id === identifier || p.slug === identifier || p.name === identifier,
		);

	const requirePreview = (worker: string, identifier: string) => {
		requireWorker(worker);
		const preview = find(worker, identifier);
		if (preview === undefined)
			throw new PreviewsError(404, PREVIEW_NOT_FOUND, `Preview ${identifier} not found`);
		return preview;
	};

	// "Preview URL: <preview-name>-<worker-name>.<subdomain>.workers.dev" while the Worker's
	// Preview URLs are on (developers.cloudflare.com/workers/previews/); none when they are off
	// (wrangler then prints NO_ACTIVE_PREVIEW_URLS_MESSAGE, cli.js:185835).
	const previewUrls = (worker: string, preview: WorkerPreview) =>
		subdomainOf(worker)?.previews_enabled
			? [`https://${preview.slug}-${worker}.${options.subdomain}.workers.dev`]
			: [];

	// The deployment URL "points to one specific deploy and never changes" (same page); its host
	// is assumed to prefix the deployment id's first 8 hex to the Preview URL's host.
	const deploymentUrls = (worker: string, preview: WorkerPreview, d: PreviewDeployment) =>
		previewUrls(worker, preview).map((url) =>
			url.replace("https://", `https://${d.id.slice(0, 8)}-`),
		);

	const previewJson = (worker: string, p: WorkerPreview) => ({
		id: p.id,
		name: p.name,
		slug: p.slug,
		created_on: p.createdOn,
		urls: previewUrls(worker, p),
		...p.settings,
	});

	// Secret values never leave the API (wrangler deletes `text` anyway, cli.js:186044).
	const deploymentJson = (worker: string, p: WorkerPreview, d: PreviewDeployment) => ({
		id: d.id,
		created_on: d.createdOn,
		annotations: d.annotations,
		compatibility_date: d.compatibilityDate,
		compatibility_flags: d.compatibilityFlags,
		main_module: d.mainModule,
		env: Object.fromEntries(
			Object.entries(d.env).map(([name, b]) => [
				name,
				SECRET_TYPES.has(b.type) ? { type: b.type } : b,
			]),
		),
		urls: deploymentUrls(worker, p, d),
	});

	// createPreviewDeploymentForm (cli.js:184783): a `metadata` JSON part and one `files` part per module.
	async function createDeployment(
		worker: string,
		preview: WorkerPreview,
		request: PreviewsRequest,
	) {
		if (!request.contentType?.startsWith("multipart/form-data"))
			throw new PreviewsError(400, VALIDATION_ERROR, "Expected a multipart/form-data body");
		const form = await new Response(new Uint8Array(request.body), {
			headers: { "content-type": request.contentType },
		}).formData();
		const metadataPart = form.get("metadata");
		if (typeof metadataPart !== "string")
			throw new PreviewsError(400, VALIDATION_ERROR, "Missing metadata part");
		const metadata = JSON.parse(metadataPart) as {
			main_module?: string;
			env?: Record<string, PreviewBinding>;
			annotations?: Record<string, unknown>;
			compatibility_date?: string;
			compatibility_flags?: string[];
		};
		const modules: Record<string, string> = {};
		for (const file of form.getAll("files")) {
			if (typeof file !== "string") modules[file.name] = await file.text();
		}
		const previous = preview.deployments.at(-1);
		if (metadata.main_module === undefined && previous === undefined)
			throw new PreviewsError(
				400,
				VALIDATION_ERROR,
				"main_module is required for the first deployment",
			);
		const mainModule = metadata.main_module ?? previous?.mainModule ?? "";
		if (metadata.main_module !== undefined && modules[mainModule] === undefined)
			throw new PreviewsError(400, VALIDATION_ERROR, `No such module "${mainModule}"`);
		const id = randomUUID();
		const env: Record<string, PreviewBinding> = {};
		const secrets = new Map<string, string>();
		const previousSecrets = previous ? preview.secretValues.get(previous.id) : undefined;
		for (const [name, binding] of Object.entries(metadata.env ?? {})) {
			if (typeof binding?.type !== "string")
				throw new PreviewsError(400, VALIDATION_ERROR, `binding ${name} has no type`);
			if (binding.type === "inherit") {
				// wrangler marks secrets of the latest deployment it does not resend as inherit (cli.js:185800).
				const value = previousSecrets?.get(name);
				if (value === undefined)
					throw new PreviewsError(
						400,
						VALIDATION_ERROR,
						`binding ${name} of type inherit has nothing to inherit`,
					);
				secrets.set(name, value);
				env[name] = { type: "secret_text" };
				continue;
			}
			if (SECRET_TYPES.has(binding.type)) {
				secrets.set(name, String(binding.text ?? ""));
				env[name] = { type: binding.type };
				continue;
			}
			// As for version uploads: a D1 binding must name an existing database.
			if (binding.type === "d1" && !options.hasD1Database(String(binding.database_id ?? "")))
				throw new PreviewsError(
					400,
					VALIDATION_ERROR,
					`binding ${name} of type d1 must have a valid \`database_id\` specified`,
				);
			env[name] = binding;
		}
		const annotations: Record<string, string> = {};
		for (const [k, v] of Object.entries(metadata.annotations ?? {}))
			if (typeof v === "string") annotations[k] = v;
		const deployment: PreviewDeployment = {
			id,
			createdOn: new Date().toISOString(),
			mainModule: metadata.main_module ?? previous?.mainModule ?? "",
			modules: metadata.main_module === undefined ? (previous?.modules ?? {}) : modules,
			annotations,
			env,
			compatibilityDate: metadata.compatibility_date,
			compatibilityFlags: metadata.compatibility_flags ?? [],
		};
		preview.deployments.push(deployment);
		preview.secretValues.set(id, secrets);
		return ok(deploymentJson(worker, preview, deployment));
	}

	async function routeWorker(worker: string, rest: string[], request: PreviewsRequest) {
		const { method } = request;
		if (rest.length === 0) {
			// GET/PATCH …/workers/workers/:name for a Worker that exists only as a Preview parent
			// (getPreviewBaseConfig, cli.js:184821); scripts go to workers-api.
			if (options.hasScript(worker) || !parents.has(worker)) return undefined;
			const parent = parents.get(worker);
			if (method === "GET")
				return ok({
					id: worker,
					name: worker,
					created_on: parent?.createdOn,
					subdomain: parent,
					previews_base_config: {},
				});
			return undefined;
		}
		if (rest[0] !== "previews") return undefined;
		const [, identifier, area, deploymentId, ...extra] = rest;
		if (extra.length > 0) return undefined;
		if (identifier === undefined) {
			requireWorker(worker);
			if (method === "GET")
				return ok((previews.get(worker) ?? []).map((p) => previewJson(worker, p)));
			if (method !== "POST") return undefined;
			// createPreview (cli.js:184738): `{name, observability?, logpush?, tail_consumers?}`,
			// `?ignore_base_config=true` with --ignore-base-config.
			const body = json(request);
			const name = body.name;
			if (typeof name !== "string" || previewSlug(name) === "")
				throw new PreviewsError(400, VALIDATION_ERROR, "name is required");
			if (find(worker, name) !== undefined || find(worker, previewSlug(name)) !== undefined)
				throw new PreviewsError(409, VALIDATION_ERROR, `A Preview named ${name} already exists`);
			const { name: _name, ...settings } = body;
			const preview: WorkerPreview = {
				id: randomUUID(),
				name,
				slug: previewSlug(name),
				createdOn: new Date().toISOString(),
				ignoreBaseConfig: request.params.get("ignore_base_config") === "true",
				settings,
				deployments: [],
				secretValues: new Map(),
			};
			previews.set(worker, [...(previews.get(worker) ?? []), preview]);
			return ok(previewJson(worker, preview));
		}
		const preview = requirePreview(worker, identifier);
		if (area === undefined) {
			if (method === "GET") return ok(previewJson(worker, preview));
			if (method === "PATCH") {
				// editPreview (cli.js:184751): the script settings only.
				const { name: _name, ...settings } = json(request);
				Object.assign(preview.settings, settings);
				return ok(previewJson(worker, preview));
			}
			if (method === "DELETE") {
				// deletePreview (cli.js:184764): the Preview and all its deployments
				// (`wrangler preview delete` description, cli.js:345298).
				previews.set(
					worker,
					(previews.get(worker) ?? []).filter((p) => p !== preview),
				);
				deleted.push(`${worker}/${preview.name}`);
				return ok(null);
			}
			return undefined;
		}
		if (area !== "deployments") return undefined;
		if (deploymentId === undefined) {
			if (method === "POST") return await createDeployment(worker, preview, request);
			if (method === "GET")
				return ok(
					[...preview.deployments].reverse().map((d) => deploymentJson(worker, preview, d)),
				);
			return undefined;
		}
		if (method !== "GET") return undefined;
		// getPreviewDeployment (cli.js:184775) with "latest" or an id.
		const deployment =
			deploymentId === "latest"
				? preview.deployments.at(-1)
				: preview.deployments.find((d) => d.id === deploymentId);
		if (deployment === undefined)
			throw new PreviewsError(
				404,
				NO_DEPLOYMENT,
				`Preview ${preview.name} has no deployment ${deploymentId}`,
			);
		return ok(deploymentJson(worker, preview, deployment));
	}

	/** The routes under /accounts/:a/workers/workers; undefined for anything else (workers-api's). */
	async function route(request: PreviewsRequest): Promise<Reply | undefined> {
		const [, , area, sub, worker, ...rest] = request.segments.map(decodeURIComponent);
		if (area !== "workers" || sub !== "workers") return undefined;
		try {
			if (worker === undefined) {
				if (request.method !== "POST") return undefined;
				// createPreviewParentWorker (cli.js:184717): `{name, subdomain: {enabled, previews_enabled}}`
				// when the Worker does not exist yet (provisionParentWorker, cli.js:185904).
				const body = json(request);
				const name = body.name;
				if (typeof name !== "string" || name === "")
					throw new PreviewsError(400, VALIDATION_ERROR, "name is required");
				if (workerExists(name))
					throw new PreviewsError(409, VALIDATION_ERROR, `A Worker named ${name} already exists`);
				const subdomain = (body.subdomain ?? {}) as {
					enabled?: unknown;
					previews_enabled?: unknown;
				};
				parents.set(name, {
					enabled: subdomain.enabled === true,
					previews_enabled: subdomain.previews_enabled === true,
					createdOn: new Date().toISOString(),
				});
				return ok({ id: name, name, subdomain: parents.get(name) });
			}
			return await routeWorker(worker, rest, request);
		} catch (error) {
			if (error instanceof PreviewsError)
				return fail(error.status, { code: error.code, message: error.message });
			throw error;
		}
	}

	const control: PreviewsControl = {
		previews: (worker) => [...(previews.get(worker) ?? [])],
		preview: (worker, identifier) => find(worker, identifier),
		deleted,
		secretValue: (worker, name, deploymentId) =>
			(previews.get(worker) ?? [])
				.find((p) => p.secretValues.has(deploymentId))
				?.secretValues.get(deploymentId)
				?.get(name),
	};
	return { route, control };
}
