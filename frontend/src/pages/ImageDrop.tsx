// Drag-and-drop (or choose) 3-10 character images, with previews; each is checked as it comes.
import { useId, useRef, useState, type DragEvent } from "react";
import { MAX_IMAGES, MIN_IMAGES } from "../limits";
import { inspect, setProblem, type PickedImage } from "./imageChecks";

export interface ImageDropProps {
  images: PickedImage[];
  onChange(images: PickedImage[]): void;
  disabled?: boolean;
}

export function ImageDrop({ images, onChange, disabled }: ImageDropProps) {
  const id = useId();
  const [over, setOver] = useState(false);
  const [refused, setRefused] = useState<string | null>(null);
  const current = useRef(images);
  current.current = images;

  const add = async (files: File[]) => {
    if (disabled || !files.length) return;
    const room = MAX_IMAGES - current.current.length;
    const taken = files.slice(0, Math.max(room, 0));
    setRefused(
      files.length > taken.length
        ? `At most ${MAX_IMAGES} images: ${files.length - taken.length} of these were not added.`
        : null,
    );
    const next = [...current.current];
    for (const file of taken) next.push(await inspect(file, next));
    onChange(next);
  };

  const remove = (image: PickedImage) => {
    URL.revokeObjectURL(image.previewUrl);
    setRefused(null);
    onChange(current.current.filter((other) => other.id !== image.id));
  };

  const onDrop = (event: DragEvent<HTMLDivElement>) => {
    event.preventDefault();
    setOver(false);
    void add([...event.dataTransfer.files]);
  };

  const problem = images.length ? setProblem(images) : null;
  return (
    <div className="image-drop">
      <div
        className={`drop-zone${over ? " drop-over" : ""}`}
        data-testid="drop-zone"
        onDragOver={(event) => {
          event.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={onDrop}
      >
        <p>
          Drop {MIN_IMAGES}–{MAX_IMAGES} images of the character here (JPEG, PNG or WebP, up to 15 MiB each, at least 256 px on the shorter side), or
        </p>
        <label htmlFor={`${id}-files`} className="button">
          Choose images
        </label>
        <input
          id={`${id}-files`}
          className="visually-hidden"
          type="file"
          multiple
          accept="image/jpeg,image/png,image/webp"
          disabled={disabled}
          aria-describedby={`${id}-state`}
          onChange={(event) => {
            void add([...(event.target.files ?? [])]);
            event.target.value = "";
          }}
        />
      </div>
      <p id={`${id}-state`} className={problem || refused ? "feedback feedback-error" : "feedback"} aria-live="polite" data-testid="images-state">
        {images.length} of {MIN_IMAGES}–{MAX_IMAGES} images. {refused} {problem}
      </p>
      {images.length > 0 && (
        <ul className="previews">
          {images.map((image) => (
            <li key={image.id} className={image.problem ? "preview preview-bad" : "preview"}>
              <img src={image.previewUrl} alt={image.file.name} />
              {image.problem && <p className="feedback feedback-error">{image.problem}</p>}
              <button type="button" onClick={() => remove(image)} disabled={disabled} aria-label={`Remove ${image.file.name}`}>
                Remove
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
