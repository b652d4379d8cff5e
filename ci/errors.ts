/** Machine-readable codes; the CLI maps them to exit codes (see cli/main.ts). */
export type CiErrorCode =
	| "E_USAGE"
	| "E_CONFIG_INVALID"
	| "E_CONFIG_MISSING"
	| "E_MIGRATIONS_DIR"
	| "E_MIGRATION_READ"
	| "E_MIGRATION_DRIFT"
	| "E_CHECKS_FAILED"
	| "E_D1_API"
	| "E_WRANGLER"
	| "E_INTERNAL";

export class CiError extends Error {
	readonly code: CiErrorCode;
	constructor(message: string, code: CiErrorCode, options?: { cause?: unknown }) {
		super(message, options);
		this.name = "CiError";
		this.code = code;
	}
}

/** A problem the user can fix: bad usage, bad config, unreadable input. Exit code 2. */
export class UserError extends CiError {
	constructor(message: string, code: CiErrorCode = "E_USAGE", options?: { cause?: unknown }) {
		super(message, code, options);
		this.name = "UserError";
	}
}

/** A D1 REST API failure, with D1's own error code when it gave one. */
export class D1ApiError extends CiError {
	readonly status: number | undefined;
	readonly d1Code: number | undefined;
	constructor(
		message: string,
		details: { status?: number; d1Code?: number; cause?: unknown } = {},
	) {
		super(message, "E_D1_API", { cause: details.cause });
		this.name = "D1ApiError";
		this.status = details.status;
		this.d1Code = details.d1Code;
	}
}

export const isUserError = (error: unknown): error is UserError => error instanceof UserError;
