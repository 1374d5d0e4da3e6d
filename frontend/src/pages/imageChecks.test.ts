import { describe, expect, it } from "vitest";
import { MAX_IMAGE_BYTES } from "../limits";
import { setProblem, typeProblem, type PickedImage } from "./imageChecks";

const file = (name: string, size: number, type = "image/png") => new File([new Uint8Array(size)], name, { type });
const picked = (n: number, problem: string | null = null): PickedImage[] =>
  Array.from({ length: n }, (_, i) => ({ id: String(i), file: file(`${i}.png`, 10), previewUrl: "", problem, sha256: String(i) }));

describe("the upload's checks, by the server's rules", () => {
  it("takes JPEG, PNG and WebP up to 15 MiB, by type or by extension", () => {
    expect(typeProblem(file("a.png", 10))).toBeNull();
    expect(typeProblem(file("a.webp", 10, ""))).toBeNull();
    expect(typeProblem(file("a.gif", 10, "image/gif"))).toBe("a.gif: not a JPEG, PNG or WebP image");
    expect(typeProblem(file("empty.jpg", 0, "image/jpeg"))).toBe("empty.jpg: the file is empty");
    expect(typeProblem(file("big.jpg", MAX_IMAGE_BYTES + 1, "image/jpeg"))).toBe("big.jpg: too large (15.0 MiB; at most 15 MiB)");
  });

  it("wants 3 to 10 images, each acceptable", () => {
    expect(setProblem(picked(2))).toBe("Add at least 3 images of the character (2 so far).");
    expect(setProblem(picked(3))).toBeNull();
    expect(setProblem(picked(10))).toBeNull();
    expect(setProblem(picked(11))).toBe("At most 10 images.");
    expect(setProblem(picked(4, "x.png: too small"))).toBe("Remove or replace the 4 images marked below.");
  });
});
