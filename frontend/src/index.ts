// What a host app (the video platform's upload page) imports.
export { LoRASelector, TRAINING_NOTICE } from "./components/LoRASelector";
export type { LoRASelection, LoRASelectorProps } from "./components/LoRASelector";
export { LoraflowProvider, useLoraflow } from "./context";
export type { LoraflowProviderProps } from "./context";
export { TrainingStatusView } from "./components/TrainingStatus";
export { NEW_LORA_HELP } from "./components/NameField";
export { adviceFor } from "./api/errors";
export { createLoraflowApi, LoraflowApiError } from "./api/client";
export type { LoraflowApi, TokenSource } from "./api/client";
