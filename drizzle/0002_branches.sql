ALTER TABLE "conversations" ADD COLUMN "title_set" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "conversations" ADD COLUMN "model" varchar(200);--> statement-breakpoint
ALTER TABLE "conversations" ADD COLUMN "system_prompt" text;--> statement-breakpoint
ALTER TABLE "conversations" ADD COLUMN "current_message_id" uuid;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "parent_id" uuid;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "depth" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "feedback_rating" varchar(8);--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "feedback_comment" text;--> statement-breakpoint
-- Existing data: each conversation becomes one branch (every message follows the one
-- before it, the current message is the last), and a title other than the default was
-- chosen by its owner.
UPDATE "messages" AS m SET "parent_id" = o."previous", "depth" = o."position" - 1
FROM (
  SELECT "id", lag("id") OVER w AS "previous", row_number() OVER w AS "position"
  FROM "messages"
  WINDOW w AS (PARTITION BY "conversation_id" ORDER BY "created_at", "id")
) AS o
WHERE m."id" = o."id";--> statement-breakpoint
UPDATE "conversations" AS c SET "current_message_id" = l."id"
FROM (
  SELECT DISTINCT ON ("conversation_id") "conversation_id", "id"
  FROM "messages"
  ORDER BY "conversation_id", "created_at" DESC, "id" DESC
) AS l
WHERE c."id" = l."conversation_id";--> statement-breakpoint
UPDATE "conversations" SET "title_set" = true WHERE "title" <> 'New conversation';--> statement-breakpoint
ALTER TABLE "messages" ADD CONSTRAINT "messages_parent_id_messages_id_fk" FOREIGN KEY ("parent_id") REFERENCES "public"."messages"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "messages_conversation_parent_created_id_idx" ON "messages" USING btree ("conversation_id","parent_id","created_at","id");--> statement-breakpoint
ALTER TABLE "messages" ADD CONSTRAINT "messages_feedback_rating_check" CHECK ("messages"."feedback_rating" in ('up', 'down'));