// The spec's Phase 2 upload page: the character's name and description, its images, the LoRA
// selector, submit; then the training, live, to its result with the validation images and scores.
import { useCallback, useState, type FormEvent } from "react";
import { unwrap, type LoraDetail } from "../api/client";
import { forgetNames } from "../api/names";
import { ErrorNotice } from "../components/ErrorNotice";
import { LoRASelector, TRAINING_NOTICE, type LoRASelection } from "../components/LoRASelector";
import { TrainingStatusView } from "../components/TrainingStatus";
import { useNameCheck } from "../components/useNameCheck";
import type { TrainingState } from "../components/useTraining";
import { ValidationView } from "../components/ValidationView";
import { useLoraflow } from "../context";
import { setProblem, type PickedImage } from "./imageChecks";
import { ImageDrop } from "./ImageDrop";
import { onLinkClick } from "./router";

interface Created {
  loraId: string;
  name: string;
  /** The uploaded images' previews (object URLs), shown while it trains. */
  previews: { url: string; name: string }[];
}

export function UploadPage() {
  const api = useLoraflow();
  const [selection, setSelection] = useState<LoRASelection>({ type: "new", characterName: "" });
  const [description, setDescription] = useState("");
  const [images, setImages] = useState<PickedImage[]>([]);
  const [submitting, setSubmitting] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [created, setCreated] = useState<Created | null>(null);
  const [confirmed, setConfirmed] = useState<LoRASelection | null>(null);

  const training = selection.type === "new";
  const name = useNameCheck(training ? selection.characterName : "", training);
  const nameBlocks = training && !(name.kind === "checked" && !name.check.mine) && name.kind !== "error";
  const imagesProblem = training ? setProblem(images) : null;
  const ready =
    selection.type === "none" || (selection.type === "existing" ? !!selection.loraId : !nameBlocks && !imagesProblem);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!ready || submitting) return;
    setError(null);
    if (selection.type !== "new") {
      setConfirmed(selection);
      return;
    }
    setSubmitting(true);
    const form = new FormData();
    form.append("name", selection.characterName);
    if (description.trim()) form.append("description", description.trim());
    for (const image of images) form.append("images", image.file, image.file.name);
    try {
      const answer = await unwrap(
        api.client.POST("/api/v1/lora-models", {
          // multipart: the browser writes the boundary; openapi-fetch passes FormData through.
          body: form as never,
          bodySerializer: (body: unknown) => body as FormData,
        }),
      );
      forgetNames(api);
      setCreated({
        loraId: answer.lora_id,
        name: selection.characterName,
        previews: images.map((image) => ({ url: image.previewUrl, name: image.file.name })),
      });
    } catch (exc) {
      setError(exc);
    } finally {
      setSubmitting(false);
    }
  };

  if (created) return <TrainingResult created={created} onAnother={() => (setCreated(null), setImages([]), setDescription(""), setSelection({ type: "new", characterName: "" }))} />;

  return (
    <main className="page upload-page">
      <h1>Train a character LoRA</h1>
      <p className="lead">Name the character, add 3–10 images of it, and loraflow trains a LoRA that keeps it the same in every clip.</p>
      <form onSubmit={submit} noValidate aria-describedby="upload-error">
        <LoRASelector
          value={selection}
          disabled={submitting}
          onChange={(next) => {
            setSelection(next);
            setConfirmed(null);
            setError(null);
          }}
        />
        {training && (
          <>
            <div className="field">
              <label htmlFor="description">Description (optional)</label>
              <textarea id="description" rows={2} maxLength={2000} value={description} disabled={submitting} onChange={(event) => setDescription(event.target.value)} />
            </div>
            <ImageDrop images={images} onChange={setImages} disabled={submitting} />
          </>
        )}
        <div id="upload-error">
          <ErrorNotice error={error} />
        </div>
        <button type="submit" className="primary" disabled={!ready || submitting}>
          {submitting ? "Uploading…" : training ? "Train LoRA" : "Continue"}
        </button>
        {confirmed && <SelectionSummary selection={confirmed} />}
      </form>
    </main>
  );
}

function SelectionSummary({ selection }: { selection: LoRASelection }) {
  return (
    <p className="summary" role="status">
      {selection.type === "none"
        ? "The video will use the reference images only."
        : selection.type === "existing"
          ? `The video job will use LoRA ${selection.loraId} (lora_model_id).`
          : null}
    </p>
  );
}

function TrainingResult({ created, onAnother }: { created: Created; onAnother(): void }) {
  const api = useLoraflow();
  const [detail, setDetail] = useState<LoraDetail | null>(null);
  const [status, setStatus] = useState<TrainingState["status"]>(null);
  const onChange = useCallback(
    (state: TrainingState) => {
      setStatus(state.status);
      if (state.status === "completed" || state.status === "failed") {
        unwrap(api.client.GET("/api/v1/lora-models/{lora_id}", { params: { path: { lora_id: created.loraId } } })).then(setDetail, () => undefined);
      }
    },
    [api, created.loraId],
  );
  const running = status !== null && status !== "completed" && status !== "failed";
  return (
    <main className="page upload-page">
      <h1>Training “{created.name}”</h1>
      <TrainingStatusView loraId={created.loraId} onChange={onChange} />
      {running && <p className="notice" role="note">{TRAINING_NOTICE}</p>}
      <h2 className="small-heading">Trained from</h2>
      <ul className="previews previews-small">
        {created.previews.map((image) => (
          <li key={image.url} className="preview">
            <img src={image.url} alt={image.name} />
          </li>
        ))}
      </ul>
      {detail?.validation && <ValidationView validation={detail.validation} />}
      <p className="actions">
        <a href={`/library/${created.loraId}`} onClick={onLinkClick(`/library/${created.loraId}`)}>
          See it in the library
        </a>
        <button type="button" onClick={onAnother}>
          Train another
        </button>
      </p>
    </main>
  );
}
