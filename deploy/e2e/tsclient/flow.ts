// The e2e suite's TypeScript client: openapi-fetch, typed by the paths and
// schemas that openapi-typescript generates from the gateway's own
// /openapi.json (deploy/e2e/clients_test.go generates schema.d.ts, compiles
// this file with tsc, and runs it with node against the live stack). It
// walks register → login → two accounts → a deposit by the admin → a
// transfer → both histories, then provokes a 422 and a 429 and shows them
// as typed errors. It prints one JSON line for the Go test to check.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

declare const process: { env: Record<string, string | undefined>; exitCode?: number };

type Problem = components["schemas"]["Problem"];

// ApiError is an error answer as the document types it: every error status
// of every route is a Problem (application/problem+json).
class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
    readonly headers: Headers,
  ) {
    super(`${status} ${problem.type}: ${problem.detail}`);
  }
}

// unwrap returns an answer's typed body, or throws its typed problem.
function unwrap<D>(r: { data?: D; error?: Problem; response: Response }): D {
  if (r.error !== undefined) {
    throw new ApiError(r.response.status, r.error, r.response.headers);
  }
  if (r.data === undefined) {
    throw new Error(`${r.response.status} without a body`);
  }
  return r.data;
}

// expectProblem runs call, which must fail with status.
async function expectProblem(status: number, call: () => Promise<unknown>): Promise<ApiError> {
  try {
    await call();
  } catch (e) {
    if (e instanceof ApiError && e.status === status && e.problem.status === status) {
      return e;
    }
    throw e;
  }
  throw new Error(`want ${status}, got a success`);
}

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

const base = env("BANK_BASE");
const secrets: string[] = [];

// client acts from its own client IP (the stack trusts the test as a proxy).
function client(ip: string) {
  let token = "";
  const api = createClient<paths>({ baseUrl: base, headers: { "X-Forwarded-For": ip } });
  api.use({
    onRequest({ request }) {
      if (token) request.headers.set("Authorization", `Bearer ${token}`);
      return request;
    },
  });
  return {
    api,
    // login logs in; for a user whose MFA is on, code completes the login.
    async login(email: string, password: string, code = "") {
      const first = unwrap(await api.POST("/v1/auth/login", { body: { email, password } }));
      let t: { accessToken: string; refreshToken: string } = first;
      if (first.mfaRequired) {
        check(code !== "" && first.mfaToken !== undefined, `login ${email}: MFA required`);
        t = unwrap(await api.POST("/v1/auth/login/mfa", { body: { mfaToken: first.mfaToken ?? "", code } }));
      }
      secrets.push(password, t.accessToken, t.refreshToken);
      token = t.accessToken;
    },
  };
}

const key = () => `ts-${crypto.randomUUID()}`;

function check(ok: boolean, what: string) {
  if (!ok) throw new Error(what);
}

async function main() {
  const [customerIP, adminIP, floodIP] = env("BANK_IPS").split(",");
  const customer = client(customerIP);
  const email = `gen-ts.${crypto.randomUUID().slice(0, 8)}@example.test`;
  const password = "correct horse battery, typed";
  const { user } = unwrap(
    await customer.api.POST("/v1/auth/register", { body: { email, password, displayName: "Generated TS" } }),
  );
  check(user.roles.length === 1 && user.roles[0] === "user", `register: roles ${user.roles}`);
  await customer.login(email, password);

  const open = async () =>
    unwrap(await customer.api.POST("/v1/accounts", { body: { currency: "EUR", displayName: "typed" } })).account;
  const [a, b] = [await open(), await open()];

  const admin = client(adminIP);
  // Deposits are staff operations: the admin logs in with a one-time code.
  await admin.login(env("BANK_ADMIN_EMAIL"), env("BANK_ADMIN_PASSWORD"), env("BANK_ADMIN_OTP"));
  const deposit = unwrap(
    await admin.api.POST("/v1/accounts/{accountId}/deposits", {
      params: { path: { accountId: a.id }, header: { "Idempotency-Key": key() } },
      body: { amount: "50000", currency: "EUR", reference: "generated TypeScript client" },
    }),
  ).transfer;
  check(deposit.kind === "DEPOSIT" && deposit.status === "COMPLETED", `deposit: ${deposit.kind} ${deposit.status}`);

  const transfer = (amount: string) =>
    customer.api.POST("/v1/transfers", {
      params: { header: { "Idempotency-Key": key() } },
      body: { fromAccountId: a.id, toAccountId: b.id, amount, currency: "EUR", description: "typed" },
    });
  const moved = unwrap(await transfer("12345")).transfer;
  check(moved.status === "COMPLETED" && moved.amount === "12345", `transfer: ${moved.status} ${moved.amount}`);

  const history = async (accountId: string) =>
    unwrap(
      await customer.api.GET("/v1/accounts/{accountId}/transactions", {
        params: { path: { accountId }, query: { pageSize: 10 } },
      }),
    ).entries.map((e) => e.amount);
  const [historyA, historyB] = [await history(a.id), await history(b.id)];
  check(historyA.join() === "-12345,50000", `history of A: ${historyA}`);
  check(historyB.join() === "12345", `history of B: ${historyB}`);

  const refused = await expectProblem(422, async () => unwrap(await transfer("900000")));

  const flood = client(floodIP);
  let throttled: ApiError | undefined;
  for (let i = 0; i < 25 && !throttled; i++) {
    const e = await expectProblem(i < 20 ? 401 : 429, async () =>
      unwrap(await flood.api.POST("/v1/auth/refresh", { body: { refreshToken: "not-a-refresh-token" } })),
    );
    if (e.status === 429) throttled = e;
  }
  check(throttled !== undefined, "no 429 after 20 refreshes");

  console.log(
    JSON.stringify({
      historyA,
      historyB,
      problem422: refused.problem,
      problem429: throttled!.problem,
      retryAfter: throttled!.headers.get("Retry-After"),
      secrets,
    }),
  );
}

main().catch((e) => {
  console.error(e instanceof ApiError ? `${e.message} ${JSON.stringify(e.problem)}` : e);
  process.exitCode = 1;
});
