import type { Database, Queryable } from "@berth/kit";

/** A platform route: of a web process, or of one replica of an rtc process. */
export interface RouteRow {
  hostname: string;
  team: string;
  app: string;
  processType: string;
  /** 0 for a web process's route; the replica's number (1, 2, ...) for an rtc process's per-replica hostname. */
  replica: number;
  createdAt: Date;
}

/** A custom domain attached to a web process. */
export interface DomainRow {
  hostname: string;
  app: string;
  processType: string;
  createdAt: Date;
}

/** Where issuance of one hostname's certificate stands. */
export type CertificateStateName = "pending" | "issuing" | "issued" | "failed" | "renewing";

/** The certificate of one hostname, with its issuance state. */
export interface CertificateRow {
  hostname: string;
  state: CertificateStateName;
  issuer: string;
  certificatePem: string | null;
  privateKeyPem: string | null;
  notBefore: Date | null;
  notAfter: Date | null;
  lastError: string;
  lastAttemptAt: Date | null;
  failures: number;
}

/** A key pair and certificate kept in the store (the platform CA). */
export interface StoredKeyPair {
  certificatePem: string;
  privateKeyPem: string;
}

/** The router's queries over its own schema. */
export interface RouterStore {
  /** Records the platform route of a web process; false when it was already there. */
  upsertRoute(route: Omit<RouteRow, "createdAt" | "replica">): Promise<boolean>;
  /**
   * Makes the per-replica routes of an rtc process exactly `hostnames`
   * (replica 1 first), removing the others with their certificates; false when nothing changed.
   */
  syncReplicaRoutes(process: { team: string; app: string; processType: string }, hostnames: readonly string[]): Promise<boolean>;
  /** Removes the route of a process; returns the hostnames removed. */
  deleteRoute(app: string, processType: string): Promise<string[]>;
  listRoutes(app?: string): Promise<RouteRow[]>;
  /** Makes the TURN hostnames exactly `hostnames`, removing the others' certificates; false when nothing changed. */
  syncTurnHostnames(hostnames: readonly string[]): Promise<boolean>;
  listTurnHostnames(): Promise<string[]>;
  /** Attaches a domain; false when the hostname is taken already. */
  addDomain(domain: Omit<DomainRow, "createdAt">): Promise<DomainRow | undefined>;
  getDomain(hostname: string): Promise<DomainRow | undefined>;
  listDomains(app?: string): Promise<DomainRow[]>;
  /** Detaches a domain of `app`; false when the app has no such domain. */
  removeDomain(app: string, hostname: string): Promise<boolean>;
  /** Removes every route and domain of an app with their certificates; returns the hostnames. */
  deleteApp(app: string): Promise<string[]>;
  listCertificates(): Promise<CertificateRow[]>;
  getCertificate(hostname: string): Promise<CertificateRow | undefined>;
  /** Creates a pending certificate row for each hostname that has none. */
  ensureCertificates(hostnames: readonly string[]): Promise<void>;
  updateCertificate(hostname: string, fields: Partial<Omit<CertificateRow, "hostname">>): Promise<void>;
  deleteCertificates(hostnames: readonly string[]): Promise<void>;
  getAcmeAccountKey(directoryUrl: string): Promise<string | undefined>;
  /** Saves the account key unless one exists; returns the one in force. */
  saveAcmeAccountKey(directoryUrl: string, keyPem: string): Promise<string>;
  putChallenge(token: string, keyAuthorization: string): Promise<void>;
  getChallenge(token: string): Promise<string | undefined>;
  removeChallenge(token: string): Promise<void>;
  getPlatformCa(): Promise<StoredKeyPair | undefined>;
  /** Replaces the platform CA if it is still `current` (another replica may have replaced it first); returns the one in force. */
  replacePlatformCa(current: StoredKeyPair, next: StoredKeyPair): Promise<StoredKeyPair>;
  /** Saves the CA unless one exists; returns the one in force (another replica may have won). */
  savePlatformCa(pair: StoredKeyPair): Promise<StoredKeyPair>;
}

const CERTIFICATE_COLUMNS: Record<keyof Omit<CertificateRow, "hostname">, string> = {
  state: "state",
  issuer: "issuer",
  certificatePem: "certificate_pem",
  privateKeyPem: "private_key_pem",
  notBefore: "not_before",
  notAfter: "not_after",
  lastError: "last_error",
  lastAttemptAt: "last_attempt_at",
  failures: "failures",
};

function routeRow(row: Record<string, unknown>): RouteRow {
  return {
    hostname: row.hostname as string,
    team: row.team as string,
    app: row.app as string,
    processType: row.process_type as string,
    replica: row.replica as number,
    createdAt: row.created_at as Date,
  };
}

function domainRow(row: Record<string, unknown>): DomainRow {
  return { hostname: row.hostname as string, app: row.app as string, processType: row.process_type as string, createdAt: row.created_at as Date };
}

function certificateRow(row: Record<string, unknown>): CertificateRow {
  return {
    hostname: row.hostname as string,
    state: row.state as CertificateStateName,
    issuer: row.issuer as string,
    certificatePem: row.certificate_pem as string | null,
    privateKeyPem: row.private_key_pem as string | null,
    notBefore: row.not_before as Date | null,
    notAfter: row.not_after as Date | null,
    lastError: row.last_error as string,
    lastAttemptAt: row.last_attempt_at as Date | null,
    failures: row.failures as number,
  };
}

/** The router's store over its migrated database. */
export function createRouterStore(db: Database): RouterStore {
  const getPlatformCa = async (): Promise<StoredKeyPair | undefined> => {
    const { rows } = await db.query("SELECT certificate_pem, private_key_pem FROM platform_ca WHERE id = 1");
    return rows[0] ? { certificatePem: rows[0].certificate_pem as string, privateKeyPem: rows[0].private_key_pem as string } : undefined;
  };
  const deleteCertificates = (q: Queryable, hostnames: readonly string[]) =>
    hostnames.length === 0 ? Promise.resolve() : q.query("DELETE FROM certificates WHERE hostname = ANY($1)", [hostnames]).then(() => {});

  return {
    async upsertRoute(route) {
      const result = await db.query(
        `INSERT INTO routes (hostname, team, app, process_type) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING RETURNING hostname`,
        [route.hostname, route.team, route.app, route.processType],
      );
      return result.rowCount === 1;
    },

    syncReplicaRoutes(process, hostnames) {
      return db.transaction(async (tx) => {
        const { rows } = await tx.query(
          `DELETE FROM routes WHERE app = $1 AND process_type = $2 AND replica > 0
             AND (replica, hostname) NOT IN (SELECT ordinality::integer, hostname FROM unnest($3::text[]) WITH ORDINALITY AS wanted (hostname))
           RETURNING hostname`,
          [process.app, process.processType, hostnames],
        );
        await deleteCertificates(
          tx,
          rows.map((row) => row.hostname as string),
        );
        const added = await tx.query(
          `INSERT INTO routes (hostname, team, app, process_type, replica)
           SELECT hostname, $1, $2, $3, ordinality FROM unnest($4::text[]) WITH ORDINALITY AS wanted (hostname)
           ON CONFLICT DO NOTHING`,
          [process.team, process.app, process.processType, hostnames],
        );
        return rows.length > 0 || (added.rowCount ?? 0) > 0;
      });
    },

    syncTurnHostnames(hostnames) {
      return db.transaction(async (tx) => {
        const { rows } = await tx.query("DELETE FROM turn_hostnames WHERE NOT hostname = ANY($1) RETURNING hostname", [hostnames]);
        await deleteCertificates(
          tx,
          rows.map((row) => row.hostname as string),
        );
        const added = await tx.query("INSERT INTO turn_hostnames (hostname) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING", [hostnames]);
        return rows.length > 0 || (added.rowCount ?? 0) > 0;
      });
    },

    async listTurnHostnames() {
      const { rows } = await db.query("SELECT hostname FROM turn_hostnames ORDER BY hostname");
      return rows.map((row) => row.hostname as string);
    },

    deleteRoute(app, processType) {
      return db.transaction(async (tx) => {
        const { rows } = await tx.query("DELETE FROM routes WHERE app = $1 AND process_type = $2 RETURNING hostname", [app, processType]);
        const hostnames = rows.map((row) => row.hostname as string);
        await deleteCertificates(tx, hostnames);
        return hostnames;
      });
    },

    async listRoutes(app) {
      const { rows } = app
        ? await db.query("SELECT * FROM routes WHERE app = $1 ORDER BY hostname", [app])
        : await db.query("SELECT * FROM routes ORDER BY hostname");
      return rows.map(routeRow);
    },

    async addDomain(domain) {
      const { rows } = await db.query(
        `INSERT INTO domains (hostname, app, process_type) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING RETURNING *`,
        [domain.hostname, domain.app, domain.processType],
      );
      return rows[0] ? domainRow(rows[0]) : undefined;
    },

    async getDomain(hostname) {
      const { rows } = await db.query("SELECT * FROM domains WHERE hostname = $1", [hostname]);
      return rows[0] ? domainRow(rows[0]) : undefined;
    },

    async listDomains(app) {
      const { rows } = app
        ? await db.query("SELECT * FROM domains WHERE app = $1 ORDER BY hostname", [app])
        : await db.query("SELECT * FROM domains ORDER BY hostname");
      return rows.map(domainRow);
    },

    removeDomain(app, hostname) {
      return db.transaction(async (tx) => {
        const result = await tx.query("DELETE FROM domains WHERE app = $1 AND hostname = $2", [app, hostname]);
        if (result.rowCount === 0) return false;
        await deleteCertificates(tx, [hostname]);
        return true;
      });
    },

    deleteApp(app) {
      return db.transaction(async (tx) => {
        const routes = await tx.query("DELETE FROM routes WHERE app = $1 RETURNING hostname", [app]);
        const domains = await tx.query("DELETE FROM domains WHERE app = $1 RETURNING hostname", [app]);
        const hostnames = [...routes.rows, ...domains.rows].map((row) => row.hostname as string);
        await deleteCertificates(tx, hostnames);
        return hostnames;
      });
    },

    async listCertificates() {
      const { rows } = await db.query("SELECT * FROM certificates ORDER BY hostname");
      return rows.map(certificateRow);
    },

    async getCertificate(hostname) {
      const { rows } = await db.query("SELECT * FROM certificates WHERE hostname = $1", [hostname]);
      return rows[0] ? certificateRow(rows[0]) : undefined;
    },

    async ensureCertificates(hostnames) {
      if (hostnames.length === 0) return;
      await db.query(`INSERT INTO certificates (hostname, state) SELECT unnest($1::text[]), 'pending' ON CONFLICT DO NOTHING`, [hostnames]);
    },

    async updateCertificate(hostname, fields) {
      const entries = Object.entries(fields).filter(([, value]) => value !== undefined);
      if (entries.length === 0) return;
      const assignments = entries.map(([key], index) => `${CERTIFICATE_COLUMNS[key as keyof typeof CERTIFICATE_COLUMNS]} = $${index + 2}`);
      await db.query(`UPDATE certificates SET ${assignments.join(", ")}, updated_at = now() WHERE hostname = $1`, [
        hostname,
        ...entries.map(([, value]) => value),
      ]);
    },

    deleteCertificates: (hostnames) => deleteCertificates(db, hostnames),

    async getAcmeAccountKey(directoryUrl) {
      const { rows } = await db.query("SELECT account_key_pem FROM acme_accounts WHERE directory_url = $1", [directoryUrl]);
      return rows[0]?.account_key_pem as string | undefined;
    },

    async saveAcmeAccountKey(directoryUrl, keyPem) {
      await db.query("INSERT INTO acme_accounts (directory_url, account_key_pem) VALUES ($1, $2) ON CONFLICT DO NOTHING", [directoryUrl, keyPem]);
      const { rows } = await db.query("SELECT account_key_pem FROM acme_accounts WHERE directory_url = $1", [directoryUrl]);
      return rows[0]!.account_key_pem as string;
    },

    async putChallenge(token, keyAuthorization) {
      await db.query(
        `INSERT INTO acme_challenges (token, key_authorization) VALUES ($1, $2)
         ON CONFLICT (token) DO UPDATE SET key_authorization = excluded.key_authorization`,
        [token, keyAuthorization],
      );
    },

    async getChallenge(token) {
      const { rows } = await db.query("SELECT key_authorization FROM acme_challenges WHERE token = $1", [token]);
      return rows[0]?.key_authorization as string | undefined;
    },

    async removeChallenge(token) {
      await db.query("DELETE FROM acme_challenges WHERE token = $1", [token]);
    },

    getPlatformCa,

    async replacePlatformCa(current, next) {
      await db.query("UPDATE platform_ca SET certificate_pem = $2, private_key_pem = $3 WHERE id = 1 AND certificate_pem = $1", [
        current.certificatePem,
        next.certificatePem,
        next.privateKeyPem,
      ]);
      return (await getPlatformCa())!;
    },

    async savePlatformCa(pair) {
      await db.query("INSERT INTO platform_ca (id, certificate_pem, private_key_pem) VALUES (1, $1, $2) ON CONFLICT DO NOTHING", [
        pair.certificatePem,
        pair.privateKeyPem,
      ]);
      return (await getPlatformCa())!;
    },
  };
}
