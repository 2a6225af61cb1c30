// Server logs: one line per event on stderr, readable (`time server event key=value …`) or JSON.

/** How log lines look. */
export type LogFormat = "text" | "json";

/** Writes one event per line. */
export interface Logger {
  event(name: string, fields?: Record<string, string | number | boolean | undefined>): void;
}

/** A logger writing lines through `write`; `colour` tints warnings on a terminal. */
export function createLogger(
  options: { write: (line: string) => void; format: LogFormat; server: string; colour?: boolean },
): Logger {
  return {
    event(name, fields = {}) {
      const now = new Date();
      if (options.format === "json") {
        const record: Record<string, unknown> = {
          time: now.toISOString(),
          server: options.server,
          event: name,
        };
        for (const [k, v] of Object.entries(fields)) if (v !== undefined) record[k] = v;
        options.write(JSON.stringify(record));
        return;
      }
      let line = `${now.toISOString().slice(11, 23)} ${options.server} ${name}`;
      for (const [k, v] of Object.entries(fields)) {
        if (v === undefined) continue;
        const text = String(v);
        line += ` ${k}=${/[\s"]/.test(text) ? JSON.stringify(text) : text}`;
      }
      const warn = /^(no_consensus|out_of_sync|dropped|halt|lying|corrupt|error|network_differs|clock_off)/
        .test(name);
      options.write(options.colour && warn ? `\x1b[33m${line}\x1b[0m` : line);
    },
  };
}
