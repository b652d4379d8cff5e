// Hand-made stand-in for the binding `dagger develop` would generate in the consumer's sdk/
// (no engine here). Only what test/fixtures/consumer/src uses; arguments with a defaultPath or
// a default are optional, so codegen puts them in an options object.
import type { Directory, File } from "@dagger.io/dagger";

declare module "@dagger.io/dagger" {
	interface Client {
		workersPipeline(opts?: WorkersPipelineOpts): WorkersPipeline;
	}
}

export interface WorkersPipelineOpts {
	source?: Directory;
	pipeline?: Directory;
	wranglerConfig?: string;
	commit?: string;
}

export interface WorkersPipeline {
	migrationTest(opts?: {
		dir?: string;
		env?: "staging" | "production";
		binding?: string;
		updateSnapshot?: boolean;
		parity?: boolean;
		cache?: boolean;
	}): File;
	ci(opts?: { noParity?: boolean; noBuild?: boolean; noCache?: boolean }): Promise<string>;
}
