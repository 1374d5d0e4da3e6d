-- Names made only of invisible characters (sql/0007) missed some that show nothing: the Arabic
-- letter mark (U+061C), Mongolian variation selectors (U+180B-180F), variation selectors
-- (U+FE00-FE0F and U+E0100-E01EF), interlinear annotation marks (U+FFF9-FFFB), musical format
-- characters (U+1D173-1D17A) and tag characters (U+E0000-E007F): a name of just U+FE0F passed
-- both the API and this CHECK and looked empty in the library. The same set as the API's
-- (api/schemas.py, _INVISIBLE). NOT VALID, as before: it binds every new or changed row.
ALTER TABLE lora_models DROP CONSTRAINT IF EXISTS lora_models_name_shape;
ALTER TABLE lora_models ADD CONSTRAINT lora_models_name_shape CHECK (
  char_length(name) BETWEEN 1 AND 255
  AND name = btrim(name, E' \t\r\n')
  -- at least one visible character: not only spaces, zero-width, filler or selector characters
  AND name ~ '[^[:space:]\u00a0\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u2000-\u200f\u2028-\u202f\u205f-\u206f\u2800\u3000\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\U0001d173-\U0001d17a\U000e0000-\U000e007f\U000e0100-\U000e01ef]'
  AND name !~ '[[:cntrl:]]'
) NOT VALID;
