CREATE EXTENSION IF NOT EXISTS pg_trgm;--> statement-breakpoint
CREATE TABLE "usage_days" (
	"user_id" uuid NOT NULL,
	"day" date NOT NULL,
	"messages" integer DEFAULT 0 NOT NULL,
	"prompt_tokens" bigint DEFAULT 0 NOT NULL,
	"completion_tokens" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "usage_days_user_id_day_pk" PRIMARY KEY("user_id","day")
);
--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "content_folded" text GENERATED ALWAYS AS (lower(content)) STORED NOT NULL;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "daily_token_quota" integer;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "daily_message_quota" integer;--> statement-breakpoint
ALTER TABLE "usage_days" ADD CONSTRAINT "usage_days_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "usage_days_day_idx" ON "usage_days" USING btree ("day");--> statement-breakpoint
CREATE INDEX "conversations_title_trgm_idx" ON "conversations" USING gin ("title" gin_trgm_ops);--> statement-breakpoint
CREATE INDEX "messages_content_folded_trgm_idx" ON "messages" USING gin ("content_folded" gin_trgm_ops);--> statement-breakpoint
ALTER TABLE "users" ADD CONSTRAINT "users_daily_token_quota_check" CHECK ("users"."daily_token_quota" >= 0);--> statement-breakpoint
ALTER TABLE "users" ADD CONSTRAINT "users_daily_message_quota_check" CHECK ("users"."daily_message_quota" >= 0);--> statement-breakpoint
-- What each user spent so far, per UTC day, from the stored messages: their messages
-- and the tokens of the answers (regenerates before this migration cannot be told apart).
INSERT INTO "usage_days" ("user_id", "day", "messages", "prompt_tokens", "completion_tokens")
SELECT c."user_id", (m."created_at" AT TIME ZONE 'UTC')::date,
  count(*) FILTER (WHERE m."role" = 'user'),
  coalesce(sum(m."prompt_tokens") FILTER (WHERE m."role" = 'assistant'), 0),
  coalesce(sum(m."completion_tokens") FILTER (WHERE m."role" = 'assistant'), 0)
FROM "messages" m JOIN "conversations" c ON c."id" = m."conversation_id"
GROUP BY 1, 2;