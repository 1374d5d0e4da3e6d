// Character images checked in the browser, by the server's rules (limits.ts), so a bad set is
// refused before anything is uploaded.
import { IMAGE_TYPES, MAX_IMAGES, MAX_IMAGE_BYTES, MAX_PIXELS, MIN_IMAGES, MIN_IMAGE_SIDE } from "../limits";

export interface PickedImage {
  id: string;
  file: File;
  previewUrl: string;
  /** Why the server would refuse it; null when it passes. */
  problem: string | null;
  sha256: string | null;
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
const BY_EXTENSION: Record<string, string> = { jpg: "image/jpeg", jpeg: "image/jpeg", png: "image/png", webp: "image/webp" };

export function typeProblem(file: File): string | null {
  const type = file.type || BY_EXTENSION[file.name.split(".").pop()?.toLowerCase() ?? ""] || "";
  if (!(type in IMAGE_TYPES)) return `${file.name}: not a JPEG, PNG or WebP image`;
  if (file.size === 0) return `${file.name}: the file is empty`;
  if (file.size > MAX_IMAGE_BYTES) return `${file.name}: too large (${mib(file.size)}; at most ${MAX_IMAGE_BYTES / 1024 / 1024} MiB)`;
  return null;
}

function dimensions(url: string): Promise<{ width: number; height: number } | null> {
  return new Promise((resolve) => {
    const image = new Image();
    image.onload = () => resolve({ width: image.naturalWidth, height: image.naturalHeight });
    image.onerror = () => resolve(null);
    image.src = url;
  });
}

async function digest(file: File): Promise<string | null> {
  try {
    const hash = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
    return [...new Uint8Array(hash)].map((b) => b.toString(16).padStart(2, "0")).join("");
  } catch {
    return null;
  }
}

export async function inspect(file: File, earlier: PickedImage[]): Promise<PickedImage> {
  const previewUrl = URL.createObjectURL(file);
  const picked: PickedImage = { id: `${file.name}-${file.size}-${Math.random()}`, file, previewUrl, problem: typeProblem(file), sha256: null };
  if (picked.problem) return picked;
  const size = await dimensions(previewUrl);
  if (!size) return { ...picked, problem: `${file.name}: the image cannot be read` };
  if (size.width * size.height > MAX_PIXELS) return { ...picked, problem: `${file.name}: ${size.width}×${size.height} is too many pixels` };
  if (Math.min(size.width, size.height) < MIN_IMAGE_SIDE) {
    return { ...picked, problem: `${file.name}: ${size.width}×${size.height} is too small (the shorter side must be at least ${MIN_IMAGE_SIDE} px)` };
  }
  const sha256 = await digest(file);
  const twin = sha256 && earlier.find((other) => other.sha256 === sha256);
  if (twin) return { ...picked, sha256, problem: `${file.name}: the same image as ${twin.file.name}` };
  return { ...picked, sha256 };
}

/** What is wrong with the set as a whole (null: it can be uploaded). */
export function setProblem(images: PickedImage[]): string | null {
  const bad = images.filter((image) => image.problem);
  if (bad.length) return `Remove or replace ${bad.length === 1 ? "the image" : `the ${bad.length} images`} marked below.`;
  if (images.length < MIN_IMAGES) {
    return `Add at least ${MIN_IMAGES} images of the character (${images.length} so far).`;
  }
  if (images.length > MAX_IMAGES) return `At most ${MAX_IMAGES} images.`;
  return null;
}
