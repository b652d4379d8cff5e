// The SqlExecutor contract, run against both backends migrate can talk to.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll } from "vitest";
import { D1Client } from "../../../ci/cloudflare/d1-client.ts";
import { SqliteExecutor } from "../../../ci/migrations/executor.ts";
import { type CloudflareApi, startCloudflareApi } from "../../support/cloudflare-api.ts";
import { executorContract } from "./executor.ts";

const TOKEN = "contract-token-0123456789";
const ACCOUNT = "0123456789abcdef0123456789abcdef";
let api: CloudflareApi;
beforeAll(async () => {
	api = await startCloudflareApi({ token: TOKEN, accountId: ACCOUNT, log: () => {} });
});
afterAll(async () => {
	await api.close();
});

executorContract("D1 REST client on the loopback API", () => {
	const uuid = randomUUID();
	api.addDatabase({ uuid, name: `contract-${uuid.slice(0, 8)}` });
	return {
		executor: new D1Client({
			apiToken: TOKEN,
			accountId: ACCOUNT,
			databaseId: uuid,
			baseURL: api.url,
		}),
		close: () => {},
	};
});

executorContract(
	"better-sqlite3 in memory",
	() => {
		const executor = new SqliteExecutor();
		return { executor, close: () => executor.close() };
	},
	{
		skip: {
			// D1's 100 KB statement limit lives in workerd's D1 setup, not in SQLite itself.
			"refuses a statement over 100 KB": "SQLite's own limit is 1 GB; only D1 sets 100 KB",
		},
	},
);
