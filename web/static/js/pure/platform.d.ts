// The few platform classes the DOM-free modules use, which browsers and node both have; the
// strict check (tsconfig.strict.json) leaves the DOM library out, so they are declared here.

declare class URLSearchParams {
  constructor(init?: string | Record<string, string> | string[][]);
  append(name: string, value: string): void;
  get(name: string): string | null;
  getAll(name: string): string[];
  has(name: string): boolean;
  set(name: string, value: string): void;
  toString(): string;
}
