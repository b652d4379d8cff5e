// Workers endpoints of the loopback Cloudflare API, as real wrangler 4.164 calls them for
// `deploy` (script upload or versions + deployments, assets upload sessions, workers.dev
// subdomain, script settings, secrets), `versions list`, `deployments status` and `rollback`.
// Mounted by cloudflare-api.ts under /accounts/:account/workers/…; shapes follow
// node_modules/wrangler/wrangler-dist/cli.js (the line numbers quoted below are from 4.164.0).
import { createHash, randomBytes, randomUUID } from "node:crypto";

export interface WorkersReply {
	status: number;
	body: unknown;
	headers?: Record<string, string>;
}

export interface WorkersRequest {
	method: string;
	// Every path segment below /client/v4, starting with "accounts", <account>, "workers".
	segments: string[];
	params: URLSearchParams;
	body: Buffer;
	contentType?: string;
	authorization?: string;
}

export interface WorkerBinding {
	name: string;
	type: string;
	[key: string]: unknown;
}

export interface WorkerVersion {
	id: string;
	number: number;
	createdOn: string;
	// `--tag` / `--message` as wrangler sends them (`annotations["workers/tag"|"workers/message"]`).
	tag?: string;
	message?: string;
	annotations: Record<string, string>;
	// Bindings as uploaded; secret values are never stored here (see `secretValue`).
	bindings: WorkerBinding[];
	secretNames: string[];
	compatibilityDate?: string;
	compatibilityFlags: string[];
	mainModule?: string;
	// Module name → source text.
	modules: Record<string, string>;
	// Asset path ("/index.html") → content hash, from the upload session the version's JWT closed.
	assets: Record<string, string>;
	// How the version came to be: "upload" (PUT script) or "version" (POST versions).
	via: "upload" | "version";
}

export interface WorkerDeployment {
	id: string;
	createdOn: string;
	source: string;
	strategy: "percentage";
	versions: { version_id: string; percentage: number }[];
	annotations: Record<string, string>;
}

export interface DeployFailure {
	// Defaults: 400 / 10021 / a script-startup error. wrangler retries 5xx and 429 (up to three
	// attempts), so a single 5xx fault does not fail a deploy; a 4xx does.
	status?: number;
	code?: number;
	message?: string;
	// Only fail an upload for this script (default: any script).
	script?: string;
}

export interface WorkersControl {
	// The account's workers.dev subdomain, e.g. "loopback" → https://<script>.loopback.workers.dev
	subdomain: string;
	workersDevUrl(script: string): string;
	scripts(): string[];
	// The version at 100% in the newest deployment (what wrangler calls the current version).
	liveVersion(script: string): string | undefined;
	// Oldest first.
	versions(script: string): WorkerVersion[];
	// Newest first, as the API lists them; `deployments(s)[0]` is live.
	deployments(script: string): WorkerDeployment[];
	// Names of the secrets of the newest version (what `GET …/secrets` lists).
	secrets(script: string): string[];
	// For tests only: the stored value of a secret (newest version unless `versionId`).
	secretValue(script: string, name: string, versionId?: string): string | undefined;
	// Uploaded asset content by hash.
	asset(hash: string): { content: Buffer; contentType?: string } | undefined;
	// The newest version uploaded with `--preview-alias <alias>` (annotation "workers/alias",
	// cli.js:184286): what https://<alias>-<script>.<subdomain>.workers.dev serves.
	aliasVersion(script: string, alias: string): string | undefined;
	// The next script upload (PUT script or POST versions) fails with this error, once.
	failNextDeploy(failure?: DeployFailure): void;
	// The script's workers.dev settings (`{enabled, previews_enabled}`), if it exists.
	subdomainOf(script: string): { enabled: boolean; previews_enabled: boolean } | undefined;
}

export interface WorkersApi {
	control: WorkersControl;
	// `POST /accounts/:a/workers/assets/upload` authenticates with the upload-session JWT, not the
	// API token; everything else uses the normal token check.
	usesAssetsJwt(segments: string[]): boolean;
	authenticateAssetsUpload(authorization: string | undefined): WorkersReply | undefined;
	route(request: WorkersRequest): Promise<WorkersReply | undefined>;
	// Replaces secret values in a request body before it is recorded anywhere.
	redact(path: string, contentType: string | undefined, text: string): string;
}

export interface WorkersApiOptions {
	accountId: string;
	subdomain?: string;
	// When given, D1 bindings must name an existing database (wrangler maps this 10021 error).
	hasD1Database?: (id: string) => boolean;
}

export const REDACTED = "[REDACTED]";
const SECRET_TYPES = new Set(["secret_text", "secret_key"]);
const ASSET_BUCKET_SIZE = 2;
const JWT_TTL_S = 3600;
const AUTHOR_EMAIL = "loopback@example.com";
const AUTHOR_ID = "00000000000000000000000000000001";

// Cloudflare's codes: 10007 script not found (and what wrangler's isWorkerNotFoundError checks
// with 10090 for services), 10021 validation/startup errors, 10220 rollback across changed secrets.
const WORKER_NOT_FOUND = 10007;
const SERVICE_NOT_FOUND = 10090;
const VALIDATION_ERROR = 10021;
const ROLLBACK_SECRETS_CHANGED = 10220;

interface ScriptState {
	name: string;
	tag: string;
	createdOn: string;
	modifiedOn: string;
	versions: WorkerVersion[];
	deployments: WorkerDeployment[];
	// version id → secret name → value
	secretValues: Map<string, Map<string, string>>;
	subdomain: { enabled: boolean; previews_enabled: boolean };
	settings: Record<string, unknown>;
}

interface UploadSession {
	id: string;
	script: string;
	manifest: Record<string, string>;
	pending: Set<string>;
	uploadJwt: string;
	completionJwt: string;
}

const ok = (result: unknown, extra: Record<string, unknown> = {}, status = 200): WorkersReply => ({
	status,
	body: { success: true, errors: [], messages: [], result, ...extra },
});

const fail = (status: number, code: number, message: string): WorkersReply => ({
	status,
	body: { success: false, errors: [{ code, message }], messages: [], result: null },
});

const notFound = (script: string) =>
	fail(404, WORKER_NOT_FOUND, `workers.api.error.script_not_found: ${script}`);

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

// Unsigned-looking but well-formed: wrangler only decodes the payload (exp, single-upload mode).
function makeJwt(payload: Record<string, unknown>): string {
	const signature = randomBytes(32).toString("base64url");
	return `${base64url({ alg: "HS256", typ: "JWT" })}.${base64url(payload)}.${signature}`;
}

class WorkersError extends Error {
	constructor(
		readonly status: number,
		readonly code: number,
		message: string,
	) {
		super(message);
	}
}

async function parseForm(request: WorkersRequest): Promise<FormData> {
	if (request.contentType === undefined || !request.contentType.startsWith("multipart/form-data")) {
		throw new WorkersError(400, VALIDATION_ERROR, "Expected a multipart/form-data body");
	}
	try {
		return await new Response(new Uint8Array(request.body), {
			headers: { "content-type": request.contentType },
		}).formData();
	} catch {
		throw new WorkersError(400, VALIDATION_ERROR, "Malformed multipart body");
	}
}

const partText = async (value: FormDataEntryValue | null) =>
	value === null ? undefined : typeof value === "string" ? value : await value.text();

function parseJson(request: WorkersRequest): Record<string, unknown> {
	try {
		const parsed: unknown = JSON.parse(request.body.toString("utf8") || "{}");
		if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) {
			return parsed as Record<string, unknown>;
		}
	} catch {
		// fall through
	}
	throw new WorkersError(400, VALIDATION_ERROR, "The request body is not a JSON object");
}

// Secret values live in `bindings[]` of the multipart `metadata` part (create-worker-upload-form,
// cli.js:171507 `{name, type: "secret_text", text}`) or in JSON secret bodies (`{name, text}`).
function redactMetadata(json: string): string {
	try {
		const metadata = JSON.parse(json) as { bindings?: WorkerBinding[] };
		if (!Array.isArray(metadata.bindings)) return json;
		let changed = false;
		for (const binding of metadata.bindings) {
			if (SECRET_TYPES.has(binding.type) && "text" in binding) {
				binding.text = REDACTED;
				changed = true;
			}
		}
		return changed ? JSON.stringify(metadata) : json;
	} catch {
		return json;
	}
}

function redactMultipart(contentType: string, text: string): string {
	const boundary = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
	const marker = boundary?.[1] ?? boundary?.[2];
	if (marker === undefined) return text;
	const delimiter = `--${marker}`;
	return text
		.split(delimiter)
		.map((part) => {
			if (!/name="metadata"/.test(part.slice(0, part.indexOf("\r\n\r\n") + 1))) return part;
			const headerEnd = part.indexOf("\r\n\r\n");
			const bodyEnd = part.endsWith("\r\n") ? part.length - 2 : part.length;
			const json = part.slice(headerEnd + 4, bodyEnd);
			return `${part.slice(0, headerEnd + 4)}${redactMetadata(json)}${part.slice(bodyEnd)}`;
		})
		.join(delimiter);
}

function redactJsonSecrets(text: string): string {
	try {
		const parsed: unknown = JSON.parse(text);
		const redactOne = (value: unknown) => {
			if (value !== null && typeof value === "object" && "text" in value) {
				(value as Record<string, unknown>).text = REDACTED;
			}
		};
		if (Array.isArray(parsed)) parsed.forEach(redactOne);
		else redactOne(parsed);
		return JSON.stringify(parsed);
	} catch {
		return text;
	}
}

export function createWorkersApi(options: WorkersApiOptions): WorkersApi {
	const subdomain = options.subdomain ?? "loopback";
	const scripts = new Map<string, ScriptState>();
	const sessions = new Map<string, UploadSession>();
	const assets = new Map<string, { content: Buffer; contentType?: string }>();
	const pendingFailures: DeployFailure[] = [];
	let lastTimestamp = 0;

	// Strictly increasing timestamps, so created_on orders versions and deployments even when two
	// happen within the same millisecond (wrangler sorts `versions list` by created_on).
	const now = () => {
		lastTimestamp = Math.max(Date.now(), lastTimestamp + 1);
		return new Date(lastTimestamp).toISOString();
	};

	const scriptOf = (name: string) => {
		const script = scripts.get(name);
		if (script === undefined)
			throw new WorkersError(404, WORKER_NOT_FOUND, `workers.api.error.script_not_found: ${name}`);
		return script;
	};

	const liveVersionOf = (script: ScriptState) =>
		script.deployments[0]?.versions.find((v) => v.percentage === 100)?.version_id;

	const latestVersion = (script: ScriptState) => script.versions.at(-1);

	const workersDevUrl = (name: string) => `https://${name}.${subdomain}.workers.dev`;

	// `metadata.has_preview` is what wrangler reads after `versions upload` (cli.js:184370
	// `result.metadata.has_preview`) to print the preview URLs; true while previews are enabled.
	const versionJson = (v: WorkerVersion, hasPreview = false) => ({
		id: v.id,
		number: v.number,
		metadata: {
			author_id: AUTHOR_ID,
			author_email: AUTHOR_EMAIL,
			created_on: v.createdOn,
			modified_on: v.createdOn,
			source: "wrangler",
			has_preview: hasPreview,
		},
		annotations: v.annotations,
		resources: {
			script: {
				etag: createHash("sha256").update(v.id).digest("hex"),
				handlers: ["fetch"],
				last_deployed_from: "wrangler",
			},
			script_runtime: {
				compatibility_date: v.compatibilityDate,
				compatibility_flags: v.compatibilityFlags,
				usage_model: "standard",
			},
			bindings: [...v.bindings, ...v.secretNames.map((name) => ({ name, type: "secret_text" }))],
		},
	});

	const deploymentJson = (d: WorkerDeployment) => ({
		id: d.id,
		source: d.source,
		strategy: d.strategy,
		author_email: AUTHOR_EMAIL,
		created_on: d.createdOn,
		annotations: d.annotations,
		versions: d.versions,
	});

	const scriptJson = (script: ScriptState) => {
		const version = latestVersion(script);
		return {
			id: script.name,
			tag: script.tag,
			tags: (script.settings.tags as string[] | undefined) ?? [],
			etag: createHash("sha256")
				.update(version?.id ?? "")
				.digest("hex"),
			handlers: ["fetch"],
			created_on: script.createdOn,
			modified_on: script.modifiedOn,
			usage_model: "standard",
			compatibility_date: version?.compatibilityDate,
			compatibility_flags: version?.compatibilityFlags ?? [],
			has_assets: version !== undefined && Object.keys(version.assets).length > 0,
			has_modules: version !== undefined && Object.keys(version.modules).length > 1,
			last_deployed_from: "wrangler",
			logpush: script.settings.logpush ?? false,
			placement_mode: null,
		};
	};

	function takeFailure(script: string): DeployFailure | undefined {
		const index = pendingFailures.findIndex((f) => f.script === undefined || f.script === script);
		return index === -1 ? undefined : pendingFailures.splice(index, 1)[0];
	}

	// The multipart body of `PUT …/scripts/:name` (cli.js:183848) and `POST …/versions` (cli.js:183780).
	async function createVersion(
		name: string,
		request: WorkersRequest,
		via: WorkerVersion["via"],
	): Promise<{ script: ScriptState; version: WorkerVersion }> {
		const failure = takeFailure(name);
		if (failure !== undefined) {
			throw new WorkersError(
				failure.status ?? 400,
				failure.code ?? VALIDATION_ERROR,
				failure.message ??
					"Uncaught Error: simulated startup failure (loopback failNextDeploy)\n  at worker.js:1:1",
			);
		}
		const form = await parseForm(request);
		const metadataText = await partText(form.get("metadata"));
		if (metadataText === undefined) {
			throw new WorkersError(400, VALIDATION_ERROR, "Missing metadata part");
		}
		const metadata = JSON.parse(metadataText) as {
			main_module?: string;
			body_part?: string;
			bindings?: WorkerBinding[];
			compatibility_date?: string;
			compatibility_flags?: string[];
			keep_bindings?: string[];
			annotations?: Record<string, string | undefined>;
			assets?: { jwt?: string };
		};
		const mainModule = metadata.main_module ?? metadata.body_part;
		const modules: Record<string, string> = {};
		for (const [key, value] of form.entries()) {
			if (key === "metadata") continue;
			modules[key] = (await partText(value)) ?? "";
		}
		if (mainModule === undefined || modules[mainModule] === undefined) {
			throw new WorkersError(
				400,
				VALIDATION_ERROR,
				`No such module "${mainModule ?? ""}". Did you mean to upload it as main_module?`,
			);
		}
		let script = scripts.get(name);
		const previous = script === undefined ? undefined : latestVersion(script);
		const keep = new Set(metadata.keep_bindings ?? []);
		const bindings: WorkerBinding[] = [];
		const secrets = new Map<string, string>();
		if (previous !== undefined && script !== undefined) {
			const previousSecrets = script.secretValues.get(previous.id) ?? new Map<string, string>();
			if (keep.has("secret_text")) for (const [k, v] of previousSecrets) secrets.set(k, v);
			for (const b of previous.bindings) if (keep.has(b.type)) bindings.push(b);
		}
		for (const binding of metadata.bindings ?? []) {
			if (typeof binding?.name !== "string" || typeof binding.type !== "string") {
				throw new WorkersError(400, VALIDATION_ERROR, "Every binding needs a name and a type");
			}
			if (binding.type === "inherit") {
				const inherited = previous?.bindings.find((b) => b.name === binding.name);
				const inheritedSecret =
					previous === undefined
						? undefined
						: script?.secretValues.get(previous.id)?.get(binding.name);
				if (inheritedSecret !== undefined) secrets.set(binding.name, inheritedSecret);
				else if (inherited !== undefined) bindings.push(inherited);
				else {
					throw new WorkersError(
						400,
						VALIDATION_ERROR,
						`binding ${binding.name} of type inherit has no binding to inherit from the previous version`,
					);
				}
				continue;
			}
			if (SECRET_TYPES.has(binding.type)) {
				secrets.set(binding.name, String(binding.text ?? ""));
				continue;
			}
			if (
				binding.type === "d1" &&
				options.hasD1Database !== undefined &&
				!options.hasD1Database(String(binding.id ?? ""))
			) {
				throw new WorkersError(
					400,
					VALIDATION_ERROR,
					`binding ${binding.name} of type d1 must have a valid \`id\` specified`,
				);
			}
			const index = bindings.findIndex((b) => b.name === binding.name);
			if (index !== -1) bindings.splice(index, 1);
			bindings.push(binding);
		}
		for (const name of secrets.keys()) {
			const index = bindings.findIndex((b) => b.name === name);
			if (index !== -1) bindings.splice(index, 1);
		}
		let versionAssets: Record<string, string> = {};
		if (metadata.assets?.jwt !== undefined) {
			const session = [...sessions.values()].find((s) => s.completionJwt === metadata.assets?.jwt);
			if (session === undefined || session.script !== name || session.pending.size > 0) {
				throw new WorkersError(400, VALIDATION_ERROR, "Invalid or incomplete assets upload JWT");
			}
			versionAssets = session.manifest;
		}
		const createdOn = now();
		if (script === undefined) {
			script = {
				name,
				tag: randomBytes(16).toString("hex"),
				createdOn,
				modifiedOn: createdOn,
				versions: [],
				deployments: [],
				secretValues: new Map(),
				subdomain: { enabled: false, previews_enabled: false },
				settings: {},
			};
			scripts.set(name, script);
		}
		script.modifiedOn = createdOn;
		const annotations: Record<string, string> = {};
		for (const [k, v] of Object.entries(metadata.annotations ?? {})) {
			if (typeof v === "string") annotations[k] = v;
		}
		annotations["workers/triggered_by"] = via === "upload" ? "upload" : "version_upload";
		const version: WorkerVersion = {
			id: randomUUID(),
			number: script.versions.length + 1,
			createdOn,
			tag: annotations["workers/tag"],
			message: annotations["workers/message"],
			annotations,
			bindings,
			secretNames: [...secrets.keys()].sort(),
			compatibilityDate: metadata.compatibility_date,
			compatibilityFlags: metadata.compatibility_flags ?? [],
			mainModule,
			modules,
			assets: versionAssets,
			via,
		};
		script.versions.push(version);
		script.secretValues.set(version.id, secrets);
		return { script, version };
	}

	function deploy(
		script: ScriptState,
		versions: { version_id: string; percentage: number }[],
		annotations: Record<string, string>,
	): WorkerDeployment {
		const deployment: WorkerDeployment = {
			id: randomUUID(),
			createdOn: now(),
			source: "wrangler",
			strategy: "percentage",
			versions,
			annotations,
		};
		script.deployments.unshift(deployment);
		return deployment;
	}

	// `POST …/deployments[?force=true]` (cli.js:171091): deploy and rollback both come here.
	function createDeployment(script: ScriptState, request: WorkersRequest): WorkersReply {
		const body = parseJson(request);
		const versions = body.versions;
		if (
			!Array.isArray(versions) ||
			versions.length === 0 ||
			!versions.every((v) => typeof v?.version_id === "string" && typeof v?.percentage === "number")
		) {
			return fail(
				400,
				VALIDATION_ERROR,
				"versions must be a non-empty list of {version_id, percentage}",
			);
		}
		const total = versions.reduce((n: number, v: { percentage: number }) => n + v.percentage, 0);
		if (Math.abs(total - 100) > 1e-9) {
			return fail(400, VALIDATION_ERROR, `version percentages must add up to 100, not ${total}`);
		}
		for (const v of versions as { version_id: string }[]) {
			if (!script.versions.some((known) => known.id === v.version_id)) {
				return fail(404, VALIDATION_ERROR, `Version ${v.version_id} not found`);
			}
		}
		// Only a single version at 100 % can be a rollback: `wrangler rollback` sends exactly that
		// (cli.js rollback → createDeployment with `[{version_id, percentage: 100}]`); a split made
		// by `wrangler versions deploy` (cli.js versionsDeployHandler) is a deployment.
		const target =
			versions.length === 1
				? (versions as { version_id: string; percentage: number }[]).find(
						(v) => v.percentage === 100,
					)
				: undefined;
		const latest = latestVersion(script);
		// Deploying an older version (a rollback) whose secrets differ from the newest version's needs
		// `?force=true`; wrangler's rollback asks for confirmation on 10220 and retries with it.
		if (
			target !== undefined &&
			latest !== undefined &&
			target.version_id !== latest.id &&
			request.params.get("force") !== "true"
		) {
			const from = script.secretValues.get(latest.id) ?? new Map<string, string>();
			const to = script.secretValues.get(target.version_id) ?? new Map<string, string>();
			const changed = [...new Set([...from.keys(), ...to.keys()])]
				.filter((k) => from.get(k) !== to.get(k))
				.sort();
			if (changed.length > 0) {
				return fail(
					400,
					ROLLBACK_SECRETS_CHANGED,
					`The deployment could not be created because secrets have changed since the target version. The following secrets have changed: ${changed.join(", ")}`,
				);
			}
		}
		const annotations: Record<string, string> = {};
		const given = body.annotations;
		if (given !== null && typeof given === "object") {
			for (const [k, v] of Object.entries(given)) if (typeof v === "string") annotations[k] = v;
		}
		annotations["workers/triggered_by"] =
			target !== undefined && latest !== undefined && target.version_id !== latest.id
				? "rollback"
				: "deployment";
		const deployment = deploy(
			script,
			(versions as { version_id: string; percentage: number }[]).map(
				({ version_id, percentage }) => ({
					version_id,
					percentage,
				}),
			),
			annotations,
		);
		return ok(deploymentJson(deployment));
	}

	// POST …/assets-upload-session (cli.js:170509): `{manifest: {"/path": {hash, size}}}` →
	// `{jwt, buckets}`; with nothing to upload the jwt is already the completion token.
	function startUploadSession(name: string, request: WorkersRequest): WorkersReply {
		const manifest = parseJson(request).manifest;
		if (manifest === null || typeof manifest !== "object") {
			return fail(400, VALIDATION_ERROR, "manifest is required");
		}
		const byPath: Record<string, string> = {};
		for (const [path, entry] of Object.entries(manifest as Record<string, { hash?: unknown }>)) {
			if (typeof entry?.hash !== "string") {
				return fail(400, VALIDATION_ERROR, `manifest entry ${path} has no hash`);
			}
			byPath[path] = entry.hash;
		}
		const pending = new Set(Object.values(byPath).filter((hash) => !assets.has(hash)));
		const id = randomUUID();
		const exp = Math.floor(Date.now() / 1000) + JWT_TTL_S;
		const session: UploadSession = {
			id,
			script: name,
			manifest: byPath,
			pending,
			uploadJwt: makeJwt({ kind: "upload", session_id: id, account_id: options.accountId, exp }),
			completionJwt: makeJwt({
				kind: "completion",
				session_id: id,
				account_id: options.accountId,
				exp,
			}),
		};
		sessions.set(id, session);
		const hashes = [...pending];
		const buckets: string[][] = [];
		for (let i = 0; i < hashes.length; i += ASSET_BUCKET_SIZE) {
			buckets.push(hashes.slice(i, i + ASSET_BUCKET_SIZE));
		}
		return ok({ jwt: pending.size === 0 ? session.completionJwt : session.uploadJwt, buckets });
	}

	const sessionForUploadJwt = (authorization: string | undefined) => {
		const token = /^Bearer (\S+)$/.exec(authorization ?? "")?.[1];
		return [...sessions.values()].find((s) => s.uploadJwt === token);
	};

	// POST /workers/assets/upload?base64=true (cli.js:170792): multipart, one part per hash with
	// base64 content; 202 `{jwt: null}` until the session's last file, then 201 with completion JWT.
	async function uploadAssets(
		request: WorkersRequest,
		session: UploadSession,
	): Promise<WorkersReply> {
		const base64 = request.params.get("base64") === "true";
		const form = await parseForm(request);
		for (const [hash, value] of form.entries()) {
			if (!session.pending.has(hash) && !Object.values(session.manifest).includes(hash)) {
				return fail(400, VALIDATION_ERROR, `hash ${hash} is not part of this upload session`);
			}
			const text = typeof value === "string" ? value : undefined;
			const raw =
				text !== undefined ? Buffer.from(text) : Buffer.from(await (value as File).arrayBuffer());
			const content = base64 ? Buffer.from(raw.toString("utf8"), "base64") : raw;
			const contentType = typeof value === "string" ? undefined : (value as File).type || undefined;
			assets.set(hash, {
				content,
				contentType: contentType === "application/null" ? undefined : contentType,
			});
			session.pending.delete(hash);
		}
		return session.pending.size === 0
			? ok({ jwt: session.completionJwt }, {}, 201)
			: ok({ jwt: null }, {}, 202);
	}

	async function routeScript(
		name: string,
		rest: string[],
		request: WorkersRequest,
	): Promise<WorkersReply | undefined> {
		const { method } = request;
		const route = `${method} ${rest.join("/")}`;
		switch (route) {
			case "PUT ": {
				// cli.js:183848 `PUT …/scripts/:name?excludeScript=true&bindings_inherit=strict`
				const { script, version } = await createVersion(name, request, "upload");
				const annotations: Record<string, string> = { "workers/triggered_by": "upload" };
				if (version.message !== undefined) annotations["workers/message"] = version.message;
				deploy(script, [{ version_id: version.id, percentage: 100 }], annotations);
				return ok({
					...scriptJson(script),
					deployment_id: version.id,
					startup_time_ms: 1,
				});
			}
			case "GET ":
				return ok(scriptJson(scriptOf(name)));
			case "DELETE ":
				scriptOf(name);
				scripts.delete(name);
				return ok(null);
			case "POST versions": {
				// cli.js:183780 — a new version, not deployed; `deploy` then POSTs a deployment.
				const { script, version } = await createVersion(name, request, "version");
				return ok({
					...versionJson(version, script.subdomain.previews_enabled),
					startup_time_ms: 1,
				});
			}
			case "GET versions": {
				// cli.js:171084 `?deployable=true` → `{items}` (newest first).
				const script = scriptOf(name);
				const items = [...script.versions].reverse().map((v) => versionJson(v));
				return ok({ items });
			}
			case "GET deployments": {
				// cli.js:171050 `{deployments}` newest first; wrangler takes `.at(0)` as the latest.
				const script = scriptOf(name);
				return ok({ deployments: script.deployments.map(deploymentJson) });
			}
			case "POST deployments":
				return createDeployment(scriptOf(name), request);
			case "POST assets-upload-session":
				return startUploadSession(name, request);
			case "GET subdomain":
				return ok(scriptOf(name).subdomain);
			case "POST subdomain": {
				// cli.js:168310 `{enabled, previews_enabled}` → the state after the change.
				const script = scriptOf(name);
				const body = parseJson(request);
				if (typeof body.enabled === "boolean") script.subdomain.enabled = body.enabled;
				if (typeof body.previews_enabled === "boolean") {
					script.subdomain.previews_enabled = body.previews_enabled;
				} else if (typeof body.enabled === "boolean") {
					// Without `previews_enabled` (no `preview_urls` in the config) Preview URLs follow the
					// workers.dev route (cli.js:168343 "Preview URLs will be <enabled> … by default").
					script.subdomain.previews_enabled = body.enabled;
				}
				return ok(script.subdomain);
			}
			case "DELETE subdomain": {
				const script = scriptOf(name);
				script.subdomain = { enabled: false, previews_enabled: false };
				return ok(null);
			}
			case "GET secrets": {
				// cli.js:179784 (deploy's check-remote-secrets-override and `wrangler secret list`).
				const script = scriptOf(name);
				const latest = latestVersion(script);
				return ok((latest?.secretNames ?? []).map((n) => ({ name: n, type: "secret_text" })));
			}
			case "GET script-settings":
				return ok(scriptOf(name).settings);
			case "PATCH script-settings": {
				// cli.js:171111 (tags, logpush, observability, tail_consumers).
				const script = scriptOf(name);
				Object.assign(script.settings, parseJson(request));
				return ok(script.settings);
			}
			case "GET settings": {
				// cli.js:178006 (provisioning reads the current bindings).
				const script = scriptOf(name);
				const latest = latestVersion(script);
				return ok({
					...script.settings,
					bindings: [
						...(latest?.bindings ?? []),
						...(latest?.secretNames ?? []).map((n) => ({ name: n, type: "secret_text" })),
					],
					compatibility_date: latest?.compatibilityDate,
					compatibility_flags: latest?.compatibilityFlags ?? [],
					usage_model: "standard",
				});
			}
			default: {
				if (method === "GET" && rest[0] === "versions" && rest.length === 2) {
					// cli.js:171032
					const script = scriptOf(name);
					const version = script.versions.find((v) => v.id === rest[1]);
					if (version === undefined) {
						return fail(404, VALIDATION_ERROR, `Version ${rest[1]} not found`);
					}
					return ok(versionJson(version));
				}
				return undefined;
			}
		}
	}

	async function route(request: WorkersRequest): Promise<WorkersReply | undefined> {
		const [, , , area, ...rest] = request.segments.map(decodeURIComponent);
		const { method } = request;
		try {
			if (area === "subdomain" && rest.length === 0) {
				// cli.js:167536 GET → `{subdomain}`; PUT registers one (cli.js:167709).
				if (method === "GET") return ok({ subdomain });
				if (method === "PUT")
					return ok({ subdomain: String(parseJson(request).subdomain ?? subdomain) });
				return undefined;
			}
			if (area === "subdomains" && rest.length === 1 && method === "GET") {
				// cli.js:167660 availability check: 10032 means available.
				return rest[0] === subdomain
					? fail(409, 10031, "Subdomain unavailable")
					: fail(404, 10032, "Subdomain available");
			}
			if (area === "services" && rest.length === 1 && method === "GET") {
				// cli.js:183333 preUploadApiChecks: `default_environment.script` (tag, tags,
				// last_deployed_from — "dash"/"api" would make wrangler prompt).
				const name = rest[0] ?? "";
				const script = scripts.get(name);
				if (script === undefined) {
					return fail(404, SERVICE_NOT_FOUND, `workers.api.error.service_not_found: ${name}`);
				}
				return ok({
					id: name,
					default_environment: {
						environment: "production",
						created_on: script.createdOn,
						modified_on: script.modifiedOn,
						script: scriptJson(script),
					},
					created_on: script.createdOn,
					modified_on: script.modifiedOn,
				});
			}
			if (area === "workers" && rest.length === 1 && method === "GET") {
				// cli.js:167597 getWorkerSubdomain: the Workers (beta) resource with `subdomain`.
				const name = rest[0] ?? "";
				const script = scripts.get(name);
				if (script === undefined) return notFound(name);
				return ok({
					id: script.tag,
					name,
					created_on: script.createdOn,
					updated_on: script.modifiedOn,
					tags: (script.settings.tags as string[] | undefined) ?? [],
					logpush: script.settings.logpush ?? false,
					subdomain: {
						...script.subdomain,
						...(script.subdomain.enabled ? { url: workersDevUrl(name) } : {}),
						// cli.js:184474 builds `https://<8 hex of the version id><suffix>` and, with
						// --preview-alias, `https://<alias><suffix>` (developers.cloudflare.com/workers/
						// configuration/previews/: <alias>-<worker>.<subdomain>.workers.dev).
						...(script.subdomain.previews_enabled
							? { preview_url_suffix: `-${name}.${subdomain}.workers.dev` }
							: {}),
					},
				});
			}
			if (area === "assets" && rest[0] === "upload" && rest.length === 1 && method === "POST") {
				const session = sessionForUploadJwt(request.authorization);
				if (session === undefined) return fail(401, 10000, "Authentication error");
				return await uploadAssets(request, session);
			}
			if (area === "scripts" && rest.length >= 1) {
				return await routeScript(rest[0] ?? "", rest.slice(1), request);
			}
			return undefined;
		} catch (error) {
			if (error instanceof WorkersError) return fail(error.status, error.code, error.message);
			throw error;
		}
	}

	const usesAssetsJwt = (segments: string[]) =>
		segments[0] === "accounts" &&
		segments[2] === "workers" &&
		segments[3] === "assets" &&
		segments[4] === "upload";

	return {
		control: {
			subdomain,
			workersDevUrl,
			scripts: () => [...scripts.keys()],
			liveVersion: (name) => {
				const script = scripts.get(name);
				return script === undefined ? undefined : liveVersionOf(script);
			},
			versions: (name) => [...(scripts.get(name)?.versions ?? [])],
			deployments: (name) => [...(scripts.get(name)?.deployments ?? [])],
			secrets: (name) => {
				const script = scripts.get(name);
				return script === undefined ? [] : [...(latestVersion(script)?.secretNames ?? [])];
			},
			secretValue: (name, secret, versionId) => {
				const script = scripts.get(name);
				const id = versionId ?? (script === undefined ? undefined : latestVersion(script)?.id);
				return id === undefined ? undefined : script?.secretValues.get(id)?.get(secret);
			},
			asset: (hash) => assets.get(hash),
			aliasVersion: (name, alias) =>
				[...(scripts.get(name)?.versions ?? [])]
					.reverse()
					.find((v) => v.annotations["workers/alias"] === alias)?.id,
			failNextDeploy: (failure = {}) => {
				pendingFailures.push(failure);
			},
			subdomainOf: (name) => {
				const script = scripts.get(name);
				return script === undefined ? undefined : { ...script.subdomain };
			},
		},
		usesAssetsJwt,
		authenticateAssetsUpload: (authorization) =>
			sessionForUploadJwt(authorization) === undefined
				? fail(401, 10000, "Authentication error: invalid or expired assets upload JWT")
				: undefined,
		route,
		redact: (path, contentType, text) => {
			if (!/\/workers\//.test(path)) return text;
			if (contentType?.startsWith("multipart/form-data")) {
				return /\/assets\/upload/.test(path) ? text : redactMultipart(contentType, text);
			}
			if (/\/secrets(-bulk)?(\/|$)/.test(path)) return redactJsonSecrets(text);
			return text;
		},
	};
}
