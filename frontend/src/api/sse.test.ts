import { describe, expect, it } from "vitest";
import { EventStreamParser } from "./sse";

describe("EventStreamParser", () => {
  it("reassembles events split across chunks, skips comments, and knows CRLF", () => {
    const parser = new EventStreamParser();
    expect(parser.push(": ping\n\nid: 7\nevent: prog")).toEqual([]);
    expect(parser.push('ress\ndata: {"progress": 5}\n')).toEqual([]);
    expect(parser.push("\nid: 8\r\nevent: outcome\r\ndata: a\r\ndata: b\r\n\r\n")).toEqual([
      { id: "7", event: "progress", data: '{"progress": 5}' },
      { id: "8", event: "outcome", data: "a\nb" },
    ]);
  });
});
