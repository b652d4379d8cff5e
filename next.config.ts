// Next.js config for the example app. Nothing is inlined at build time: the health route reads
// the running version from the version metadata binding and the expected migration from the
// WORKERS_PIPELINE_EXPECTED_HEAD var that deploy sets (ci/health/).
import { initOpenNextCloudflareForDev } from "@opennextjs/cloudflare";
import type { NextConfig } from "next";

const nextConfig: NextConfig = {
	typescript: { tsconfigPath: "tsconfig.app.json" },
	poweredByHeader: false,
};

export default nextConfig;

initOpenNextCloudflareForDev();
