// Generated from loraflow's OpenAPI document by scripts/api-types.mjs: do not edit.
// Regenerate with `npm run api:generate`; `npm run api:check` (make test) fails when stale.

export interface paths {
    "/api/v1/admin/lora-models/{lora_id}/moderation": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Hide or restore a LoRA, with a reason (admins; audited, never deletes) */
        post: operations["post_moderation_api_v1_admin_lora_models__lora_id__moderation_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/admin/reports": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The review queue: reported or flagged LoRAs, oldest first (admins) */
        get: operations["get_review_queue_api_v1_admin_reports_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/budget": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** This month's training spend (service role only) */
        get: operations["get_budget_api_v1_budget_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/files/{key}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** An object of local storage (public bucket, or a signed URL) */
        get: operations["get_file_api_v1_files__key__get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/lora-models": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List the public LoRA library */
        get: operations["list_lora_models_api_v1_lora_models_get"];
        put?: never;
        /** Create a LoRA; with 3-10 images (multipart) its training starts */
        post: operations["create_lora_model_api_v1_lora_models_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/lora-models/{lora_id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Get one LoRA */
        get: operations["get_lora_model_api_v1_lora_models__lora_id__get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/lora-models/{lora_id}/cancel": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Cancel a training (creator only); it ends failed with reason `cancelled` */
        post: operations["cancel_lora_training_api_v1_lora_models__lora_id__cancel_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/lora-models/{lora_id}/events": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Live events (server-sent): status, progress, and the outcome, which ends the stream
         * @description Events are pushed (PostgreSQL NOTIFY), never polled. Without `Last-Event-ID` the stream
         *     opens with the LoRA's latest status, progress and outcome; with it, with everything after
         *     that event. `event: outcome` (completed or failed) is the last event.
         */
        get: operations["stream_lora_events_api_v1_lora_models__lora_id__events_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/lora-models/{lora_id}/images": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Add character images to a pending LoRA; with 3 or more its training starts */
        post: operations["add_images_api_v1_lora_models__lora_id__images_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/lora-models/{lora_id}/rating": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        /** Rate a LoRA (1-5 stars); again to change it */
        put: operations["put_rating_api_v1_lora_models__lora_id__rating_put"];
        post?: never;
        /** Remove your rating of a LoRA (no-op without one) */
        delete: operations["delete_rating_api_v1_lora_models__lora_id__rating_delete"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/lora-models/{lora_id}/reports": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Report a LoRA (one open report per user per LoRA, 10 an hour) */
        post: operations["post_report_api_v1_lora_models__lora_id__reports_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/lora-models/{lora_id}/status": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Training status, for polling */
        get: operations["get_lora_status_api_v1_lora_models__lora_id__status_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/healthz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Liveness of the API's dependencies */
        get: operations["healthz_healthz_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        /**
         * BudgetStatusPublic
         * @description ``loraflow.domain.budget.BudgetStatus`` as the API shows it.
         */
        BudgetStatusPublic: {
            /**
             * Alert Usd
             * @description At this spend the alert fires (once a month).
             */
            alert_usd: number;
            /**
             * Limit Usd
             * @description At this spend new trainings are refused (503).
             */
            limit_usd: number;
            /**
             * Month
             * @description UTC calendar month, YYYY-MM.
             */
            month: string;
            /**
             * Refusing
             * @description Whether new trainings are being refused now.
             */
            refusing: boolean;
            /**
             * Spent Usd
             * @description Sum of job_costs this month (trainings and keyframes).
             */
            spent_usd: number;
        };
        /** CheckpointScore */
        CheckpointScore: {
            /**
             * Likeness
             * @description Mean score of its images.
             */
            likeness: number | null;
            /** Name */
            name: string;
            /** Passed */
            passed: boolean;
            /**
             * Shown
             * @description Prompts whose image shows the character.
             */
            shown: number;
            /** Step */
            step: number;
        };
        /** CreateLoraRequest */
        CreateLoraRequest: {
            /**
             * Description
             * @description Optional free text shown in the library.
             * @default null
             */
            description: string | null;
            /**
             * Name
             * @description What the user calls this character. 1-255 characters after trimming, no control characters, unique among the caller's LoRAs (other users may reuse it).
             * @example Cyberpunk Girl
             */
            name: string;
            /**
             * @description Overrides of the training defaults, within bounds.
             * @default null
             */
            training_params: components["schemas"]["TrainingParams"] | null;
        };
        /** CreateLoraResponse */
        CreateLoraResponse: {
            /**
             * Lora Id
             * Format: uuid
             * @description The new LoRA's id.
             */
            lora_id: string;
            /**
             * Message
             * @description What happens next.
             */
            message: string;
            /** @description Always `pending` for a new LoRA. */
            status: components["schemas"]["TrainingStatus"];
        };
        /** Creator */
        Creator: {
            /**
             * Email
             * @description The creator's e-mail, to tell same-named LoRAs apart.
             */
            email: string | null;
            /**
             * Id
             * @description The creator's user id; null if the user was deleted.
             */
            id: string | null;
        };
        /**
         * Decision
         * @enum {string}
         */
        Decision: "hide" | "restore";
        /** ErrorBody */
        ErrorBody: {
            /**
             * Code
             * @description Stable machine-readable code, e.g. `duplicate_name`.
             */
            code: string;
            /**
             * Details
             * @description Per-field problems.
             */
            details?: components["schemas"]["ErrorDetail"][] | null;
            /**
             * Message
             * @description Human-readable explanation the user can act on.
             */
            message: string;
            /**
             * Status
             * @description The HTTP status, repeated for convenience.
             */
            status: number;
        };
        /** ErrorDetail */
        ErrorDetail: {
            /**
             * Field
             * @description Where the problem is, e.g. `body.name` or `query.limit`.
             */
            field: string;
            /**
             * Message
             * @description What is wrong with it.
             */
            message: string;
        };
        /** ErrorResponse */
        ErrorResponse: {
            error: components["schemas"]["ErrorBody"];
        };
        /** HTTPValidationError */
        HTTPValidationError: {
            /** Detail */
            detail?: components["schemas"]["ValidationError"][];
        };
        /** Health */
        Health: {
            database: components["schemas"]["HealthCheck"];
            /**
             * Status
             * @enum {string}
             */
            status: "ok" | "degraded";
            temporal: components["schemas"]["HealthCheck"];
        };
        /** HealthCheck */
        HealthCheck: {
            /**
             * Ok
             * @description Whether the API reached it just now (why not is in the API's log).
             */
            ok: boolean;
        };
        /** LoraDetail */
        LoraDetail: {
            /**
             * Base Model
             * @description Model family it was trained for, e.g. `sdxl`.
             */
            base_model: string;
            /** Completed At */
            completed_at: string | null;
            /**
             * Created At
             * Format: date-time
             */
            created_at: string;
            created_by: components["schemas"]["Creator"];
            /**
             * Description
             * @description Optional description.
             */
            description: string | null;
            /**
             * Error Message
             * @description Why training failed, when it did.
             */
            error_message: string | null;
            /**
             * File Size
             * @description File size in bytes once trained.
             */
            file_size: number | null;
            /**
             * Hidden Reason
             * @description Why it is hidden from the library (shown to its creator only).
             */
            hidden_reason?: string | null;
            /**
             * Id
             * Format: uuid
             */
            id: string;
            /**
             * My Rating
             * @description Your own rating of it, if any.
             */
            my_rating?: number | null;
            /**
             * Name
             * @description User-given name (unique per creator).
             */
            name: string;
            /** @description Users' ratings (`sort=top_rated` ranks by their damped mean). */
            rating: components["schemas"]["RatingPublic"];
            /**
             * Reference Image Urls
             * @description Images it was trained from.
             */
            reference_image_urls: string[] | null;
            /**
             * Sha256
             * @description SHA-256 of the file once trained.
             */
            sha256: string | null;
            /**
             * Storage Path
             * @description Path of the file in object storage.
             */
            storage_path: string | null;
            /**
             * Storage Url
             * @description URL of the .safetensors file once trained.
             */
            storage_url: string | null;
            /**
             * Training Cost
             * @description What training cost, in USD.
             */
            training_cost: number;
            /** @description Training parameters used. */
            training_params: components["schemas"]["TrainingParamsPublic"];
            /** @description Where the LoRA is in its life. */
            training_status: components["schemas"]["TrainingStatus"];
            /**
             * Trigger Word
             * @description Token that invokes the character in prompts.
             */
            trigger_word: string | null;
            /**
             * Updated At
             * Format: date-time
             */
            updated_at: string;
            /**
             * Usage Count
             * @description Clips generated with this LoRA.
             */
            usage_count: number;
            /**
             * Uses 30D
             * @description Clips generated with it in the last 30 days (`sort=trending`).
             */
            uses_30d: number;
            /** @description Validation's judge, scores and chosen checkpoint, once validated. */
            validation?: components["schemas"]["ValidationResult"] | null;
            /**
             * Validation Image Urls
             * @description Validation images (kept 30 days).
             */
            validation_image_urls: string[] | null;
            /**
             * Validation Passed
             * @description Whether quality validation passed.
             */
            validation_passed: boolean;
        };
        /** LoraList */
        LoraList: {
            /** Items */
            items: components["schemas"]["LoraSummary"][];
            pagination: components["schemas"]["Pagination"];
        };
        /** LoraStatus */
        LoraStatus: {
            /**
             * Error Message
             * @description Why it failed, if it did.
             */
            error_message?: string | null;
            /**
             * Estimated Remaining
             * @description Seconds left, when known.
             */
            estimated_remaining: number | null;
            /**
             * Id
             * Format: uuid
             */
            id: string;
            /**
             * Loss
             * @description Latest training loss.
             */
            loss?: number | null;
            /**
             * Phase
             * @description Finer step while running (e.g. `training`).
             */
            phase?: string | null;
            /**
             * Progress
             * @description Training progress, 0-100.
             */
            progress: number;
            /**
             * Source
             * @description `workflow`: live from the running training; `database`: the stored record.
             * @enum {string}
             */
            source: "workflow" | "database";
            /**
             * Step
             * @description Training step, while training.
             */
            step?: number | null;
            /**
             * Total Steps
             * @description Steps in all, while training.
             */
            total_steps?: number | null;
            training_status: components["schemas"]["TrainingStatus"];
        };
        /** LoraSummary */
        LoraSummary: {
            /**
             * Base Model
             * @description Model family it was trained for, e.g. `sdxl`.
             */
            base_model: string;
            /**
             * Created At
             * Format: date-time
             */
            created_at: string;
            created_by: components["schemas"]["Creator"];
            /**
             * Description
             * @description Optional description.
             */
            description: string | null;
            /**
             * Id
             * Format: uuid
             */
            id: string;
            /**
             * My Rating
             * @description Your own rating of it, if any.
             */
            my_rating?: number | null;
            /**
             * Name
             * @description User-given name (unique per creator).
             */
            name: string;
            /** @description Users' ratings (`sort=top_rated` ranks by their damped mean). */
            rating: components["schemas"]["RatingPublic"];
            /** @description Where the LoRA is in its life. */
            training_status: components["schemas"]["TrainingStatus"];
            /**
             * Trigger Word
             * @description Token that invokes the character in prompts.
             */
            trigger_word: string | null;
            /**
             * Usage Count
             * @description Clips generated with this LoRA.
             */
            usage_count: number;
            /**
             * Uses 30D
             * @description Clips generated with it in the last 30 days (`sort=trending`).
             */
            uses_30d: number;
            /**
             * Validation Passed
             * @description Whether quality validation passed.
             */
            validation_passed: boolean;
        };
        /** ModerationRequest */
        ModerationRequest: {
            /** @description `hide` (out of the library, pending or for good) or `restore`. */
            action: components["schemas"]["Decision"];
            /**
             * Reason
             * @description Why: kept in the audit log; on `hide`, shown to the creator.
             */
            reason: string;
        };
        /** ModerationResult */
        ModerationResult: {
            action: components["schemas"]["Decision"];
            /**
             * Decision Id
             * @description The audit log entry.
             */
            decision_id: number;
            /**
             * Hidden
             * @description Whether the LoRA is hidden now.
             */
            hidden: boolean;
            /**
             * Lora Id
             * Format: uuid
             */
            lora_id: string;
        };
        /** Pagination */
        Pagination: {
            /**
             * Limit
             * @description Page size used.
             */
            limit: number;
            /**
             * Offset
             * @description Offset used.
             */
            offset: number;
            /**
             * Total
             * @description Matches in all, across pages.
             */
            total: number;
        };
        /** RatingPublic */
        RatingPublic: {
            /**
             * Count
             * @description Ratings given.
             */
            count: number;
            /**
             * Mean
             * @description Mean stars (1-5); null before the first rating.
             */
            mean: number | null;
        };
        /** RatingRequest */
        RatingRequest: {
            /**
             * Stars
             * @description 1 to 5 stars.
             */
            stars: number;
        };
        /** RatingResult */
        RatingResult: {
            /** @description The LoRA's ratings, yours included. */
            rating: components["schemas"]["RatingPublic"];
            /**
             * Stars
             * @description Your rating now.
             */
            stars: number;
        };
        /** ReportCreated */
        ReportCreated: {
            /**
             * Id
             * @description The report's id.
             */
            id: number;
            /**
             * Status
             * @description Open until a moderator reviews it.
             * @constant
             */
            status: "open";
        };
        /** ReportPublic */
        ReportPublic: {
            /**
             * Created At
             * Format: date-time
             */
            created_at: string;
            /** Id */
            id: number;
            /** Note */
            note: string | null;
            reason: components["schemas"]["ReportReason"];
            /**
             * Reporter Id
             * Format: uuid
             */
            reporter_id: string;
        };
        /**
         * ReportReason
         * @enum {string}
         */
        ReportReason: "sexual" | "minor" | "violence" | "hate" | "impersonation" | "copyright" | "spam" | "other";
        /** ReportRequest */
        ReportRequest: {
            /**
             * Note
             * @description Optional details for the reviewer.
             */
            note?: string | null;
            /** @description `sexual`, `minor`, `violence`, `hate`, `impersonation`, `copyright`, `spam` or `other`. */
            reason: components["schemas"]["ReportReason"];
        };
        /** ReviewItem */
        ReviewItem: {
            /** @description The LoRA as its creator sees it, validation images included. */
            lora: components["schemas"]["LoraDetail"];
            /**
             * Reports
             * @description Its open reports, oldest first (none: it was hidden by automatic screening).
             */
            reports: components["schemas"]["ReportPublic"][];
            /**
             * Since
             * Format: date-time
             * @description When it entered the queue: its oldest open report, or its hiding.
             */
            since: string;
        };
        /** ReviewQueue */
        ReviewQueue: {
            /** Items */
            items: components["schemas"]["ReviewItem"][];
            /** Limit */
            limit: number;
            /** Offset */
            offset: number;
        };
        /**
         * Sort
         * @enum {string}
         */
        Sort: "recent" | "popular" | "name" | "top_rated" | "trending";
        /**
         * TrainingParams
         * @description What a user may override, within bounds that keep a training sane and affordable.
         */
        TrainingParams: {
            /**
             * Alpha
             * @description LoRA alpha (default = rank).
             * @default null
             */
            alpha: number | null;
            /**
             * Learning Rate
             * @description Default 1e-4.
             * @default null
             */
            learning_rate: number | null;
            /**
             * Rank
             * @description LoRA rank (default 16).
             * @default null
             */
            rank: number | null;
            /**
             * Resolution
             * @description Default 1024.
             * @default null
             */
            resolution: number | null;
            /**
             * Seed
             * @description Default 42.
             * @default null
             */
            seed: number | null;
            /**
             * Steps
             * @description Optimizer steps (default 1000).
             * @default null
             */
            steps: number | null;
            /**
             * Trigger Word
             * @description Token that invokes the character (default ohwx).
             * @default null
             */
            trigger_word: string | null;
        };
        /**
         * TrainingParamsPublic
         * @description The parameters a LoRA trains with, as far as a user chooses them (``TrainingParams``).
         */
        TrainingParamsPublic: {
            /**
             * Alpha
             * @description LoRA alpha.
             */
            alpha?: number | null;
            /**
             * Learning Rate
             * @description Learning rate.
             */
            learning_rate?: number | null;
            /**
             * Rank
             * @description LoRA rank.
             */
            rank?: number | null;
            /**
             * Resolution
             * @description Training resolution, px.
             */
            resolution?: number | null;
            /**
             * Seed
             * @description Random seed.
             */
            seed?: number | null;
            /**
             * Steps
             * @description Optimizer steps.
             */
            steps?: number | null;
            /**
             * Trigger Word
             * @description Token that invokes the character.
             */
            trigger_word?: string | null;
        };
        /**
         * TrainingStatus
         * @description pending → training → validating → completed | failed.
         * @enum {string}
         */
        TrainingStatus: "pending" | "training" | "validating" | "completed" | "failed";
        /** UploadResponse */
        UploadResponse: {
            /**
             * Images
             * @description Images the LoRA has now.
             */
            images: number;
            /**
             * Lora Id
             * Format: uuid
             */
            lora_id: string;
            status: components["schemas"]["TrainingStatus"];
            /**
             * Training Started
             * @description Whether this request started the training.
             */
            training_started: boolean;
        };
        /** ValidationError */
        ValidationError: {
            /** Context */
            ctx?: Record<string, never>;
            /** Input */
            input?: unknown;
            /** Location */
            loc: (string | number)[];
            /** Message */
            msg: string;
            /** Error Type */
            type: string;
        };
        /** ValidationImage */
        ValidationImage: {
            /**
             * Checkpoint
             * @description The checkpoint it was made with (`base`: the base model, the control).
             */
            checkpoint: string;
            /**
             * Image Url
             * @description Signed URL (expires) for the kept checkpoint's images and the controls; null otherwise.
             */
            image_url: string | null;
            /**
             * Score
             * @description The judge's likeness to the references (higher: more alike).
             */
            score: number | null;
            /**
             * Shows Character
             * @description Like the references beyond the judge's floor and the control.
             */
            shows_character: boolean;
            /**
             * Step
             * @description The training step of that checkpoint (0 for the control).
             */
            step: number;
        };
        /** ValidationPrompt */
        ValidationPrompt: {
            /** Checkpoints */
            checkpoints: components["schemas"]["ValidationImage"][];
            /** @description The base model's image, same prompt and seed. */
            control: components["schemas"]["ValidationImage"];
            /** Index */
            index: number;
            /** Prompt */
            prompt: string;
            /** Seed */
            seed: number;
        };
        /**
         * ValidationResult
         * @description How validation judged the LoRA: the judge, every checkpoint, the one kept.
         */
        ValidationResult: {
            /** Checkpoints */
            checkpoints: components["schemas"]["CheckpointScore"][];
            /**
             * Chosen
             * @description The checkpoint stored in the library; null if none passed.
             */
            chosen: string | null;
            /** Chosen Step */
            chosen_step: number | null;
            /**
             * Error
             * @description Why some validation images are missing.
             */
            error?: string | null;
            /**
             * Judge
             * @description `face` (face identity), `embedding` (CLIP/DINOv2) or `pixel` (tiny demo).
             */
            judge: string;
            /** Prompts */
            prompts: components["schemas"]["ValidationPrompt"][];
        };
    };
    responses: never;
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    post_moderation_api_v1_admin_lora_models__lora_id__moderation_post: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                lora_id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["ModerationRequest"];
            };
        };
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ModerationResult"];
                };
            };
            /** @description The request is malformed or a field is invalid (`invalid_request`), an image is unusable (`invalid_image`) or refused by automatic screening (`image_refused`). */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing, expired or invalid bearer token (`unauthorized`). */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Authenticated, but not allowed to do this (`forbidden`). */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such resource (`not_found`). */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Validation Error */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HTTPValidationError"];
                };
            };
        };
    };
    get_review_queue_api_v1_admin_reports_get: {
        parameters: {
            query?: {
                /** @description Page size. */
                limit?: number;
                /** @description Items to skip. */
                offset?: number;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ReviewQueue"];
                };
            };
            /** @description The request is malformed or a field is invalid (`invalid_request`), an image is unusable (`invalid_image`) or refused by automatic screening (`image_refused`). */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing, expired or invalid bearer token (`unauthorized`). */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Authenticated, but not allowed to do this (`forbidden`). */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Validation Error */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HTTPValidationError"];
                };
            };
        };
    };
    get_budget_api_v1_budget_get: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["BudgetStatusPublic"];
                };
            };
            /** @description Missing, expired or invalid bearer token (`unauthorized`). */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Authenticated, but not allowed to do this (`forbidden`). */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    get_file_api_v1_files__key__get: {
        parameters: {
            query?: {
                /** @description Signed URLs: when it expires (unix seconds). */
                expires?: number | null;
                /** @description Signed URLs: its signature. */
                signature?: string | null;
            };
            header?: never;
            path: {
                key: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Authenticated, but not allowed to do this (`forbidden`). */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such resource (`not_found`). */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Validation Error */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HTTPValidationError"];
                };
            };
        };
    };
    list_lora_models_api_v1_lora_models_get: {
        parameters: {
            query?: {
                /** @description Only LoRAs in this training status. */
                status?: components["schemas"]["TrainingStatus"] | null;
                /** @description Case-insensitive substring of the name or description (at most 200). */
                search?: string | null;
                /** @description `recent` (newest first), `popular` (most used), `name` (A-Z), `top_rated` (highest damped mean rating: 5 prior votes of 3 stars, so one 5-star vote does not top it), `trending` (most used in the last 30 days). */
                sort?: components["schemas"]["Sort"];
                /** @description Page size. */
                limit?: number;
                /** @description Items to skip. */
                offset?: number;
                /** @description Only this creator's LoRAs: a user id, or `me`. */
                creator?: string | null;
                /** @description Created after this instant. */
                created_after?: string | null;
                /** @description Created before this instant. */
                created_before?: string | null;
                /** @description Only this model family, e.g. `sdxl`. */
                base_model?: string | null;
                /** @description Mean rating at least this (unrated LoRAs drop out). */
                min_rating?: number | null;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["LoraList"];
                };
            };
            /** @description Not modified: the page's ETag matches If-None-Match. */
            304: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description The request is malformed or a field is invalid (`invalid_request`), an image is unusable (`invalid_image`) or refused by automatic screening (`image_refused`). */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing, expired or invalid bearer token (`unauthorized`). */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Validation Error */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HTTPValidationError"];
                };
            };
        };
    };
    create_lora_model_api_v1_lora_models_post: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["CreateLoraRequest"];
                "multipart/form-data": {
                    /** @description The spec's name for `images` (either, or both, may be sent). No images at all: a pending LoRA, as with the JSON body. */
                    character_images?: string[];
                    description?: string;
                    /** @description 3-10 character images: JPEG, PNG or WebP, at most 15 MiB and 40 MP each, shorter side at least LORAFLOW_MIN_IMAGE_SIDE (256) px. */
                    images?: string[];
                    /** @description As in the JSON body. */
                    name: string;
                    /** @description TrainingParams as JSON text. */
                    training_params?: string;
                };
            };
        };
        responses: {
            /** @description Successful Response */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CreateLoraResponse"];
                };
            };
            /** @description The request is malformed or a field is invalid (`invalid_request`), an image is unusable (`invalid_image`) or refused by automatic screening (`image_refused`). */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing, expired or invalid bearer token (`unauthorized`). */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Conflicts with existing state, e.g. a name you already use (`duplicate_name`). */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Request Entity Too Large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Unsupported Media Type */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Monthly LoRA limit reached (`monthly_limit_reached`). */
            429: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description A dependency (database, Temporal) is unavailable (`unavailable`), or this month's training budget is spent (`budget_exhausted`). */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    get_lora_model_api_v1_lora_models__lora_id__get: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                lora_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["LoraDetail"];
                };
            };
            /** @description The request is malformed or a field is invalid (`invalid_request`), an image is unusable (`invalid_image`) or refused by automatic screening (`image_refused`). */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing, expired or invalid bearer token (`unauthorized`). */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such resource (`not_found`). */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Validation Error */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HTTPValidationError"];
                };
            };
        };
    };
    cancel_lora_training_api_v1_lora_models__lora_id__cancel_post: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                lora_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["LoraStatus"];
                };
            };
            /** @description The request is malformed or a field is invalid (`invalid_request`), an image is unusable (`invalid_image`) or refused by automatic screening (`image_refused`). */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing, expired or invalid bearer token (`unauthorized`). */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Authenticated, but not allowed to do this (`forbidden`). */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such resource (`not_found`). */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Conflicts with existing state, e.g. a name you already use (`duplicate_name`). */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Validation Error */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HTTPValidationError"];
                };
            };
            /** @description A dependency (database, Temporal) is unavailable (`unavailable`), or this month's training budget is spent (`budget_exhausted`). */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    stream_lora_events_api_v1_lora_models__lora_id__events_get: {
        parameters: {
            query?: never;
            header?: {
                /** @description Resume after this event (EventSource sends it). */
                "Last-Event-ID"?: string | null;
            };
            path: {
                lora_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/event-stream": unknown;
                };
            };
            /** @description The request is malformed or a field is invalid (`invalid_request`), an image is unusable (`invalid_image`) or refused by automatic screening (`image_refused`). */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/event-stream": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing, expired or invalid bearer token (`unauthorized`). */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/event-stream": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such resource (`not_found`). */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/event-stream": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Validation Error */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HTTPValidationError"];
                };
            };
        };
    };
    add_images_api_v1_lora_models__lora_id__images_post: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                lora_id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "multipart/form-data": {
                    /** @description 3-10 character images: JPEG, PNG or WebP, at most 15 MiB and 40 MP each, shorter side at least LORAFLOW_MIN_IMAGE_SIDE (256) px. */
                    images: string[];
                };
            };
        };
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["UploadResponse"];
                };
            };
            /** @description The request is malformed or a field is invalid (`invalid_request`), an image is unusable (`invalid_image`) or refused by automatic screening (`image_refused`). */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing, expired or invalid bearer token (`unauthorized`). */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Authenticated, but not allowed to do this (`forbidden`). */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such resource (`not_found`). */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Conflicts with existing state, e.g. a name you already use (`duplicate_name`). */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Request Entity Too Large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Unsupported Media Type */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Validation Error */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HTTPValidationError"];
                };
            };
            /** @description A dependency (database, Temporal) is unavailable (`unavailable`), or this month's training budget is spent (`budget_exhausted`). */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    put_rating_api_v1_lora_models__lora_id__rating_put: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                lora_id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["RatingRequest"];
            };
        };
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RatingResult"];
                };
            };
            /** @description The request is malformed or a field is invalid (`invalid_request`), an image is unusable (`invalid_image`) or refused by automatic screening (`image_refused`). */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing, expired or invalid bearer token (`unauthorized`). */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Authenticated, but not allowed to do this (`forbidden`). */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such resource (`not_found`). */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Conflicts with existing state, e.g. a name you already use (`duplicate_name`). */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Validation Error */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HTTPValidationError"];
                };
            };
        };
    };
    delete_rating_api_v1_lora_models__lora_id__rating_delete: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                lora_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description The request is malformed or a field is invalid (`invalid_request`), an image is unusable (`invalid_image`) or refused by automatic screening (`image_refused`). */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing, expired or invalid bearer token (`unauthorized`). */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Validation Error */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HTTPValidationError"];
                };
            };
        };
    };
    post_report_api_v1_lora_models__lora_id__reports_post: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                lora_id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["ReportRequest"];
            };
        };
        responses: {
            /** @description Successful Response */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ReportCreated"];
                };
            };
            /** @description The request is malformed or a field is invalid (`invalid_request`), an image is unusable (`invalid_image`) or refused by automatic screening (`image_refused`). */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing, expired or invalid bearer token (`unauthorized`). */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such resource (`not_found`). */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Conflicts with existing state, e.g. a name you already use (`duplicate_name`). */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Validation Error */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HTTPValidationError"];
                };
            };
            /** @description Monthly LoRA limit reached (`monthly_limit_reached`). */
            429: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    get_lora_status_api_v1_lora_models__lora_id__status_get: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                lora_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["LoraStatus"];
                };
            };
            /** @description The request is malformed or a field is invalid (`invalid_request`), an image is unusable (`invalid_image`) or refused by automatic screening (`image_refused`). */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing, expired or invalid bearer token (`unauthorized`). */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such resource (`not_found`). */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Validation Error */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HTTPValidationError"];
                };
            };
        };
    };
    healthz_healthz_get: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Health"];
                };
            };
            /** @description A dependency does not answer. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Health"];
                };
            };
        };
    };
}
