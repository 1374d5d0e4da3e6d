// The server's limits on character images, checked here before anything is uploaded:
// loraflow/contracts/limits.py (count, bytes), loraflow/domain/images.py (formats, pixels) and the
// default of LORAFLOW_MIN_IMAGE_SIDE (loraflow/settings.py). tests/api/test_web.py checks that
// the two agree; the server checks again whatever this says.
export const MIN_IMAGES = 3;
export const MAX_IMAGES = 10;
export const MAX_IMAGE_BYTES = 15 * 1024 * 1024;
export const MIN_IMAGE_SIDE = 256;
export const MAX_PIXELS = 40_000_000;
/** Accepted formats, by MIME type (the server goes by the bytes: JPEG, PNG, WEBP). */
export const IMAGE_TYPES: Record<string, string> = { "image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP" };
