// The story on an external PostgreSQL (DATABASE_URL), as a deployment runs it.
import { platformStory } from "./support/platform-story.js";

platformStory("external");
