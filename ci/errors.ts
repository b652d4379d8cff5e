import type { ErrorCode } from "./report/codes.ts";

/** Machine-readable codes, registered in report/codes.ts; exitCodeFor(code) maps them to exit codes. */
export type CiErrorCode = ErrorCode;

/** Where an error is, for the finding --json and the reports carry: an absolute file, 1-based line and column. */
export interface ErrorLocation {
	file: string;
	line?: number;
	column?: number;
}

export class CiError extends Error {
	readonly code: CiErrorCode;
	readonly location?: ErrorLocation;
	constructor(
		message: string,
		code: CiErrorCode,
		options?: { cause?: unknown; location?: ErrorLocation },
	) {
		super(message, options);
		this.name = "CiError";
		this.code = code;
		if (options?.location) this.location = options.location;
	}
}

/** A problem the user can fix (bad usage, bad config, unreadable input): no "internal error" wording. */
export class UserError extends CiError {
	constructor(
		message: string,
		code: CiErrorCode = "E_USAGE",
		options?: { cause?: unknown; location?: ErrorLocation },
	) {
		super(message, code, options);
		this.name = "UserError";
	}
}

/** No answer from a server (refused, reset, DNS, timeout): names the URL it tried. */
export class NetworkError extends CiError {
	readonly url: string;
	constructor(message: string, details: { url: string; cause?: unknown }) {
		super(message.includes(details.url) ? message : `${message} (${details.url})`, "E_NETWORK", {
			cause: details.cause,
		});
		this.name = "NetworkError";
		this.url = details.url;
	}
}

// Credentials the API refuses and a database id it does not know are configuration (exit 2); a
// request with no answer at a known URL is the network (exit 1); anything else the API said is a
// failed run (exit 1).
const d1CodeFor = (status: number | undefined, url: string | undefined): CiErrorCode =>
	status === 401 || status === 403
		? "E_D1_AUTH"
		: status === 404
			? "E_D1_NOT_FOUND"
			: status === undefined && url
				? "E_NETWORK"
				: "E_D1_API";

/** A D1 REST API failure, with D1's own error code when it gave one. */
export class D1ApiError extends CiError {
	readonly status: number | undefined;
	readonly d1Code: number | undefined;
	/** The URL the request went to, when known (named in network failures). */
	readonly url: string | undefined;
	/** Known never to have left this machine (the API's host name did not resolve): nothing was applied. */
	readonly unsent: boolean;
	constructor(
		message: string,
		details: {
			status?: number;
			d1Code?: number;
			url?: string;
			cause?: unknown;
			unsent?: boolean;
		} = {},
	) {
		const code = d1CodeFor(details.status, details.url);
		const named = code === "E_NETWORK" && details.url && !message.includes(details.url);
		super(named ? `${message} (${details.url})` : message, code, { cause: details.cause });
		this.name = "D1ApiError";
		this.status = details.status;
		this.d1Code = details.d1Code;
		this.url = details.url;
		this.unsent = details.unsent === true;
	}
}
