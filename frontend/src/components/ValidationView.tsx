// How validation judged a LoRA: each checkpoint's verdict, and for each prompt the base model's
// image (the control) beside the kept checkpoint's, with the judge's scores.
import type { ValidationResult } from "../api/client";

const score = (value: number | null | undefined) => (value == null ? "–" : value.toFixed(3));

export function ValidationView({ validation }: { validation: ValidationResult }) {
  const shown = validation.chosen ?? validation.checkpoints.at(-1)?.name ?? null;
  return (
    <section className="validation" aria-labelledby="validation-heading">
      <h3 id="validation-heading">Validation</h3>
      <p className="muted">
        Judge: {validation.judge}.{" "}
        {validation.chosen ? `Kept checkpoint: ${validation.chosen} (step ${validation.chosen_step}).` : "No checkpoint passed."}
      </p>
      {validation.error && <p className="failed">{validation.error}</p>}
      <table className="checkpoints">
        <caption className="visually-hidden">Checkpoints</caption>
        <thead>
          <tr>
            <th scope="col">Checkpoint</th>
            <th scope="col">Step</th>
            <th scope="col">Likeness</th>
            <th scope="col">Show the character</th>
            <th scope="col">Passed</th>
          </tr>
        </thead>
        <tbody>
          {validation.checkpoints.map((c) => (
            <tr key={c.name} className={c.name === validation.chosen ? "chosen" : undefined}>
              <td>{c.name}</td>
              <td>{c.step}</td>
              <td>{score(c.likeness)}</td>
              <td>
                {c.shown} / {validation.prompts.length}
              </td>
              <td>{c.passed ? "yes" : "no"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <ul className="validation-images">
        {validation.prompts.map((p) => {
          const image = p.checkpoints.find((c) => c.checkpoint === shown);
          return (
            <li key={p.index} className="validation-prompt">
              <p className="prompt">“{p.prompt}”</p>
              <div className="pair">
                <figure>
                  {p.control.image_url ? <img src={p.control.image_url} alt={`Without the LoRA: ${p.prompt}`} /> : <div className="no-image">no image</div>}
                  <figcaption>Without LoRA · {score(p.control.score)}</figcaption>
                </figure>
                <figure>
                  {image?.image_url ? <img src={image.image_url} alt={`With the LoRA: ${p.prompt}`} /> : <div className="no-image">no image</div>}
                  <figcaption>
                    With LoRA · {score(image?.score)} · {image?.shows_character ? "shows the character" : "does not show the character"}
                  </figcaption>
                </figure>
              </div>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
